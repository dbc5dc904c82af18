//! Why a node stopped applying the topics: each reason has a short label (for `/status`,
//! `/health/ready`, error answers and tests to match) and a message that tells an operator what
//! to do.

/// Why the applier stopped. While halted the node takes no writes and mines nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HaltReason {
    /// The broker deleted (by retention) messages this node had not read yet. Nothing was
    /// skipped; a bootstrap from registered peers repairs it.
    #[error(
        "the broker no longer has the offsets this node must read next (retention deleted them); nothing was \
         skipped. Register peers (POST /nodes/register) and call GET /nodes/resolve: the node publishes the best \
         peer's branch into the blocks topic again, then reads the topics from the earliest offsets the broker \
         holds, the branch among them"
    )]
    OffsetLost,
    /// A bootstrap repaired the chain, but pointing the consumer at the broker's earliest
    /// offsets failed.
    #[error("after the bootstrap, re-reading the topics failed: {detail}; call GET /nodes/resolve again once the broker answers")]
    ResumeFailed {
        /// What the consumer reported.
        detail: String,
    },
    /// The store failed to read or write: the data on disk stays as the last committed message
    /// left it.
    #[error("the store failed: {detail}")]
    Store {
        /// The store's error.
        detail: String,
    },
}

impl HaltReason {
    /// The short label of this reason.
    pub fn label(&self) -> &'static str {
        match self {
            HaltReason::OffsetLost => "offset_lost",
            HaltReason::ResumeFailed { .. } => "resume_failed",
            HaltReason::Store { .. } => "store_failed",
        }
    }
}
