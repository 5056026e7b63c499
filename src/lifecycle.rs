//! The process's run state (serving, then draining after SIGTERM), shared by
//! the listener, the connections and the readiness endpoints. A leaf module:
//! it depends on nothing else in the crate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

/// Shared run state: draining starts at SIGTERM; connections and readiness
/// watch it.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    draining: Arc<AtomicBool>,
    notify: watch::Sender<bool>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new()
    }
}

impl Lifecycle {
    /// A running lifecycle.
    pub fn new() -> Self {
        let (notify, _) = watch::channel(false);
        Self {
            draining: Arc::new(AtomicBool::new(false)),
            notify,
        }
    }

    /// Marks the process as draining and tells every connection.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.notify.send_replace(true);
    }

    /// Whether draining has started.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// A receiver that changes when draining starts.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.notify.subscribe()
    }
}
