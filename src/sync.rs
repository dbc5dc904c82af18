//! Locking without poisoning: every mutex in the node guards data that stays consistent between
//! statements (counters, queues, caches), so a thread that panicked while holding one leaves
//! nothing half-written, and the others should go on rather than panic in turn.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, taking its data as it is when a thread panicked while holding it.
pub fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
