//! The applier's state, which only the applier changes: everyone else reads it through an
//! [`ApplierHandle`] and asks for the one change they may want (reading on after a bootstrap) by
//! message, answered once it is done.

use super::error::NodeError;
use super::halt::HaltReason;
use tokio::sync::{mpsc, oneshot, watch};

/// What the applier is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplierState {
    /// Reading the topics and applying them.
    Running,
    /// Stopped applying, for this reason: the node takes no writes and mines nothing.
    Halted(HaltReason),
    /// A bootstrap published the best peer's branch; the applier is pointing the consumer at the
    /// earliest offsets the broker holds before it reads on.
    Bootstrapping,
}

impl ApplierState {
    /// Its short label for `/status`: `running`, `halted` or `bootstrapping`.
    pub fn label(&self) -> &'static str {
        match self {
            ApplierState::Running => "running",
            ApplierState::Halted(_) => "halted",
            ApplierState::Bootstrapping => "bootstrapping",
        }
    }

    /// Why the applier halted, if it did.
    pub fn halt_reason(&self) -> Option<&HaltReason> {
        match self {
            ApplierState::Halted(why) => Some(why),
            _ => None,
        }
    }

    /// Whether a bootstrap from peers is what this state waits for: a retention gap, or a
    /// bootstrap whose re-reading failed.
    pub(super) fn awaits_bootstrap(&self) -> bool {
        matches!(self, ApplierState::Halted(HaltReason::OffsetLost | HaltReason::ResumeFailed { .. }))
    }

    /// `Ok` while running; otherwise the error a write (or a mined block) gets.
    pub(super) fn writable(&self) -> Result<(), NodeError> {
        match self {
            ApplierState::Running => Ok(()),
            ApplierState::Halted(why) => Err(NodeError::Halted(why.clone())),
            ApplierState::Bootstrapping => Err(NodeError::Bootstrapping),
        }
    }
}

/// A bootstrap's request that the applier read on: the branch was published, the applier may
/// point the consumer at the broker's earliest offsets. Answered with the state it then is in.
pub(super) struct ReadOnRequest {
    /// Where the applier answers (a requester that went away is fine).
    pub(super) answer: oneshot::Sender<ApplierState>,
}

/// The applier's side: the only sender of its state, and the requests sent to it.
pub(super) struct ApplierControl {
    state: watch::Sender<ApplierState>,
    requests: mpsc::Receiver<ReadOnRequest>,
}

/// Everyone else's side: the applier's state, read or watched, and the way to ask it to read on.
#[derive(Clone)]
pub(super) struct ApplierHandle {
    state: watch::Receiver<ApplierState>,
    requests: mpsc::Sender<ReadOnRequest>,
}

/// A new applier's control and the handle on it, starting [`ApplierState::Running`].
pub(super) fn applier_channels() -> (ApplierControl, ApplierHandle) {
    let (state, watching) = watch::channel(ApplierState::Running);
    // One request at a time: bootstraps are serialized by the node's resolve lock.
    let (sender, requests) = mpsc::channel(1);
    (ApplierControl { state, requests }, ApplierHandle { state: watching, requests: sender })
}

impl ApplierControl {
    /// Sets the state (listeners wake only when it differs).
    pub(super) fn set(&self, state: ApplierState) {
        self.state.send_if_modified(|current| {
            let changed = *current != state;
            *current = state;
            changed
        });
    }

    /// Waits for the next request to read on; `None` when the node is shutting down (`stop`
    /// fires, or every handle is gone).
    pub(super) async fn next_request(&mut self, stop: &tokio_util::sync::CancellationToken) -> Option<ReadOnRequest> {
        tokio::select! {
            _ = stop.cancelled() => None,
            request = self.requests.recv() => request,
        }
    }
}

impl ApplierHandle {
    /// The state now.
    pub(super) fn state(&self) -> ApplierState {
        self.state.borrow().clone()
    }

    /// The state, with a wake-up whenever it changes.
    pub(super) fn watch(&self) -> watch::Receiver<ApplierState> {
        self.state.clone()
    }

    /// Asks the applier to read on after a bootstrap published its branch; answers with the
    /// state the applier is then in (running, or halted again if re-reading failed).
    pub(super) async fn read_on(&self) -> Result<ApplierState, NodeError> {
        let (answer, answered) = oneshot::channel();
        self.requests.send(ReadOnRequest { answer }).await.map_err(|_| NodeError::ShuttingDown)?;
        answered.await.map_err(|_| NodeError::ShuttingDown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_is_answered_with_the_state_the_applier_sets() {
        let (mut control, handle) = applier_channels();
        let stop = tokio_util::sync::CancellationToken::new();
        let applier = tokio::spawn(async move {
            control.set(ApplierState::Halted(HaltReason::OffsetLost));
            let request = control.next_request(&stop).await.expect("a request");
            control.set(ApplierState::Running);
            request.answer.send(ApplierState::Running).expect("the requester waits");
            control
        });
        let mut watching = handle.watch();
        watching.wait_for(ApplierState::awaits_bootstrap).await.expect("the applier is alive");
        assert!(
            matches!(handle.state().writable(), Err(NodeError::Halted(HaltReason::OffsetLost))),
            "a halted applier takes no writes"
        );
        assert_eq!(handle.read_on().await.expect("answered"), ApplierState::Running);
        assert_eq!(handle.state(), ApplierState::Running);
        drop(applier.await.expect("the applier task"));
        assert!(matches!(handle.read_on().await, Err(NodeError::ShuttingDown)), "no applier, no answer");
    }

    #[tokio::test]
    async fn a_waiting_applier_stops_at_shutdown() {
        let (mut control, _handle) = applier_channels();
        let stop = tokio_util::sync::CancellationToken::new();
        stop.cancel();
        assert!(control.next_request(&stop).await.is_none());
    }

    #[test]
    fn only_the_halts_a_bootstrap_repairs_wait_for_one() {
        assert!(ApplierState::Halted(HaltReason::OffsetLost).awaits_bootstrap());
        assert!(ApplierState::Halted(HaltReason::ResumeFailed { detail: "x".into() }).awaits_bootstrap());
        assert!(!ApplierState::Halted(HaltReason::Store { detail: "x".into() }).awaits_bootstrap());
        assert!(!ApplierState::Running.awaits_bootstrap());
        assert!(!ApplierState::Bootstrapping.awaits_bootstrap());
    }
}
