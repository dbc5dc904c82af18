//! Tells a service manager how the node is doing, through systemd's notify protocol (a unit of
//! `Type=notify`, `contrib/init/kafkachain.service`): `READY=1` once the node serves current data
//! (it has read the blocks topic up to where it stood at start, or it has halted and says why in
//! `STATUS`), `STOPPING=1` when it begins to stop. Without `NOTIFY_SOCKET` in the environment (run
//! by hand, in the tests) it does nothing.

use crate::node::{Node, NotReady};
use sd_notify::NotifyState;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Sends `READY=1` with a `STATUS` line as soon as the node is caught up or halted, unless it is
/// shut down first.
pub async fn announce_ready(node: Node, shutdown: CancellationToken) {
    let status = loop {
        match node.readiness() {
            Ok(()) => break "caught up with the blocks topic".to_owned(),
            Err(NotReady::Halted(why)) => break format!("halted: {why}"),
            Err(_) => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    };
    send(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// Sends `STOPPING=1`.
pub fn announce_stopping() {
    send(&[NotifyState::Stopping]);
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("telling the service manager (NOTIFY_SOCKET) failed: {e}");
    }
}
