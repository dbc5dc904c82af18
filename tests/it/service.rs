//! The node as a systemd service: the unit in `contrib/init` passes `systemd-analyze verify`
//! without a warning, and the node speaks the notify protocol on a real `NOTIFY_SOCKET`: READY=1
//! once caught up, STOPPING=1 on SIGTERM; and `--log-file` is opened again on SIGHUP, so
//! logrotate can move it away.

use kafkachain::tools::cluster::{unique_prefix, LocalNode, NodeSpec};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Duration;

#[test]
fn the_unit_file_verifies_without_a_warning() {
    let unit =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/init/kafkachain.service")).unwrap();
    assert!(
        unit.contains("Type=notify") && unit.contains("NoNewPrivileges=true") && unit.contains("ProtectSystem=strict")
    );
    // Verified as installed, with the binary this build made where the unit expects it.
    let dir = tempfile::tempdir().unwrap();
    let installed = dir.path().join("kafkachain.service");
    std::fs::write(&installed, unit.replace("/usr/local/bin/kafkachain", crate::common::KAFKACHAIN)).unwrap();
    let out = std::process::Command::new("systemd-analyze").arg("verify").arg(&installed).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");
}

/// The next datagram on `socket`, as text.
fn next_message(socket: &UnixDatagram) -> String {
    let mut buffer = [0u8; 4096];
    let len = socket.recv(&mut buffer).expect("a notification within the timeout");
    String::from_utf8_lossy(&buffer[..len]).into_owned()
}

#[test]
fn the_node_tells_the_service_manager_when_it_is_ready_and_when_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut spec = NodeSpec::new("notified", &unique_prefix("it-notify"), &crate::common::brokers());
    spec.chain.chain_id = crate::common::CHAIN_ID.into();
    let mut node = LocalNode::configure(Path::new(crate::common::KAFKACHAIN), dir.path(), &spec).unwrap();
    node.spawn_with(&[], &[("NOTIFY_SOCKET", path.as_os_str())]).unwrap();
    let ready = next_message(&socket);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    assert!(ready.contains("STATUS=caught up"), "{ready}");
    let (code, _) = node.try_get("/health/ready").unwrap();
    assert_eq!(code, 200, "READY=1 means ready to serve");
    assert_eq!(node.terminate().unwrap(), Some(0));
    let stopping = next_message(&socket);
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping}");
}

#[test]
fn a_log_file_moved_away_is_opened_again_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.log");
    let mut spec = NodeSpec::new("rotated", &unique_prefix("it-logrotate"), &crate::common::brokers());
    spec.chain.chain_id = crate::common::CHAIN_ID.into();
    let mut node = LocalNode::configure(Path::new(crate::common::KAFKACHAIN), dir.path(), &spec).unwrap();
    node.spawn_with(&[std::ffi::OsStr::new("--log-file"), path.as_os_str()], &[]).unwrap();
    assert!(node.wait_ready(Duration::from_secs(60)));
    let rotated = dir.path().join("node.log.1");
    std::fs::rename(&path, &rotated).unwrap();
    let pid = node.pid().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let reopened = crate::common::wait_for("the log file reopened", Duration::from_secs(30), || {
        std::fs::read_to_string(&path).ok().filter(|text| text.contains("SIGHUP: log file reopened"))
    });
    let (code, answer) = node.try_get("/mine").unwrap();
    assert_eq!(code, 200, "the node runs on after SIGHUP: {answer}");
    let before = std::fs::read_to_string(&rotated).unwrap();
    assert!(before.contains("node starting"), "the lines before the rotation stay in the moved file");
    assert!(!before.contains("SIGHUP"), "and nothing after it: {before}");
    assert!(!reopened.contains("node starting"));
    assert_eq!(node.terminate().unwrap(), Some(0));
    assert!(std::fs::read_to_string(&path).unwrap().contains("stopped"), "the last lines go to the new file");
}
