//! Connections kept open for user binds, so a login pays one bind, not a
//! TCP (and TLS) handshake too. A connection here is only ever used to
//! bind — a bind changes the identity of its connection, so these never
//! search — and a bind on it replaces whatever identity the last one left.

use std::sync::Mutex;

use ldap3::Ldap;

/// At most `max_idle` idle bind connections.
#[derive(Debug)]
pub(crate) struct BindPool {
    idle: Mutex<Vec<Ldap>>,
    max_idle: usize,
}

impl BindPool {
    /// A pool keeping up to `max_idle` connections (0: none, every bind
    /// opens its own).
    pub fn new(max_idle: usize) -> Self {
        Self {
            idle: Mutex::new(Vec::with_capacity(max_idle)),
            max_idle,
        }
    }

    /// An idle connection, if one is kept.
    pub fn take(&self) -> Option<Ldap> {
        self.lock().pop()
    }

    /// Keeps a connection whose bind completed, if there is room; else it
    /// is closed.
    pub fn give_back(&self, ldap: Ldap) {
        let mut idle = self.lock();
        if idle.len() < self.max_idle {
            idle.push(ldap);
        } else {
            drop(idle);
            close(ldap);
        }
    }

    /// Closes every idle connection (the server was found unreachable:
    /// they are likely dead).
    pub fn clear(&self) {
        let idle = std::mem::take(&mut *self.lock());
        idle.into_iter().for_each(close);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Ldap>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Ends a connection without waiting for the server.
fn close(mut ldap: Ldap) {
    tokio::spawn(async move {
        let _ = ldap.unbind().await;
    });
}
