//! Whether the LDAP server answers: set by the health check and by any
//! call that found it unreachable, read before every login and refresh.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokengate_directory::{DirectoryUnavailable, Freshness};

/// The server's last known health.
#[derive(Debug)]
pub(crate) struct Health {
    up: AtomicBool,
    reason: Mutex<String>,
}

impl Health {
    /// Down until the first check.
    pub fn new() -> Self {
        Self {
            up: AtomicBool::new(false),
            reason: Mutex::new("not yet checked".to_owned()),
        }
    }

    /// Records a check's (or a call's) result; logs only the changes.
    pub fn set(&self, result: &Result<(), String>) {
        match result {
            Ok(()) => {
                if !self.up.swap(true, Ordering::SeqCst) {
                    tracing::info!("ldap directory reachable");
                }
                metrics::gauge!("tokengate_directory_up").set(1.0);
            }
            Err(reason) => {
                if self.up.swap(false, Ordering::SeqCst) {
                    tracing::warn!(%reason, "ldap directory unreachable: logins and refreshes answer UNAVAILABLE");
                    metrics::counter!("tokengate_directory_connection_losses_total").increment(1);
                }
                metrics::gauge!("tokengate_directory_up").set(0.0);
                *self.reason.lock().unwrap_or_else(|p| p.into_inner()) = reason.clone();
            }
        }
    }

    /// Whether the server answered at the last check.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    fn check(&self) -> Result<(), DirectoryUnavailable> {
        if self.is_up() {
            Ok(())
        } else {
            Err(DirectoryUnavailable(format!(
                "ldap: {}",
                self.reason.lock().unwrap_or_else(|p| p.into_inner())
            )))
        }
    }
}

/// Whether the LDAP server answers (its health check): what the core asks
/// before a login or a refresh. Both fail while it is down — a login needs
/// the bind, and a refresh is judged only on facts the server can still
/// confirm (the token stays unspent; the client retries).
#[derive(Debug, Clone)]
pub struct LdapFreshness(pub(crate) Arc<Health>);

impl Freshness for LdapFreshness {
    fn check_login(&self) -> Result<(), DirectoryUnavailable> {
        self.0.check()
    }

    fn check_refresh(&self) -> Result<(), DirectoryUnavailable> {
        self.0.check()
    }
}
