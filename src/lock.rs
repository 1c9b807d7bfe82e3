//! Taking a mutex that another thread may have poisoned.
//!
//! A poisoned lock only means a thread panicked while holding it. The
//! values behind edgeprobe's mutexes (waiting probes, the live state, the
//! sync's status) are still the best there are, and a panic in one probe
//! or one page must not stop every later one, so the guard is taken anyway.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Lock `m`, poisoned or not.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
