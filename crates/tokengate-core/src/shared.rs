//! A value that reloads replace while calls keep reading it.

use std::sync::{Arc, RwLock};

/// A value replaced wholesale at run time (the directory after a reload,
/// the key ring after a rotation). Readers get a cheap `Arc` snapshot and
/// are never blocked by a slow reload: the new value is built first, then
/// swapped in.
#[derive(Debug)]
pub struct Shared<T> {
    /// Locked only to clone or swap the `Arc`, never while a reader uses it.
    current: RwLock<Arc<T>>,
}

impl<T> Shared<T> {
    /// Wraps an initial value.
    pub fn new(value: T) -> Self {
        Self {
            current: RwLock::new(Arc::new(value)),
        }
    }

    /// The current value.
    pub fn load(&self) -> Arc<T> {
        // The lock only guards an Arc clone/swap, which cannot panic midway.
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the value.
    pub fn store(&self, value: T) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(value);
    }
}
