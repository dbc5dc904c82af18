//! A retention gap: the broker deleted messages this node had not read yet. The applier halts on
//! it rather than silently starting over; a bootstrap from registered peers (`GET
//! /nodes/resolve` while halted) repairs the chain; the applier then reads the topics again from
//! the earliest offsets the broker still holds.

use std::sync::atomic::{AtomicBool, Ordering};

/// The state of a retention gap, shared by the applier (which finds and leaves it) and the node
/// (which repairs it).
#[derive(Debug, Default)]
pub(super) struct RetentionGap {
    open: AtomicBool,
    repaired: AtomicBool,
}

impl RetentionGap {
    /// The applier found that the broker no longer has its next offset.
    pub(super) fn open(&self) {
        self.repaired.store(false, Ordering::SeqCst);
        self.open.store(true, Ordering::SeqCst);
    }

    /// Whether the node waits for a bootstrap.
    pub(super) fn is_open(&self) -> bool {
        self.open.load(Ordering::SeqCst)
    }

    /// The chain was rebuilt from peers: the applier may read the topics again.
    pub(super) fn mark_repaired(&self) {
        self.repaired.store(true, Ordering::SeqCst);
    }

    /// Whether a repair is waiting for the applier; taking it closes the gap.
    pub(super) fn take_repair(&self) -> bool {
        if self.repaired.swap(false, Ordering::SeqCst) {
            self.open.store(false, Ordering::SeqCst);
            return true;
        }
        false
    }
}
