//! Crash safety of the store: a real `kafkachain store-writer` process applies blocks to real
//! sled files and is killed with SIGKILL at random moments; after every kill the reopened store
//! must be consistent and its stored offsets must match the state they describe.

use rand::Rng;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

const KAFKACHAIN: &str = env!("CARGO_BIN_EXE_kafkachain");

fn check_store(dir: &std::path::Path) -> Value {
    let out = Command::new(KAFKACHAIN)
        .args(["check-store", "--json", "--data-dir"])
        .arg(dir)
        .output()
        .expect("running check-store");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("check-store printed nothing; stderr: {}", String::from_utf8_lossy(&out.stderr)));
    serde_json::from_str(line).expect("check-store prints JSON")
}

#[test]
fn sigkill_at_random_moments_never_leaves_a_half_applied_block() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::thread_rng();
    let mut heights = Vec::new();
    for round in 0..25 {
        let mut writer = Command::new(KAFKACHAIN)
            .args(["store-writer", "--data-dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting store-writer");
        let lifetime = if round == 0 { 600 } else { rng.gen_range(30..400) };
        std::thread::sleep(Duration::from_millis(lifetime));
        writer.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
        let status = writer.wait().unwrap();
        assert!(status.code().is_none(), "the writer died by the signal, not by itself: {status}");

        let report = check_store(dir.path());
        assert_eq!(report["problems"], Value::Array(vec![]), "round {round}: {report}");
        let height = report["tip_height"].as_u64().unwrap();
        let blocks_next = report["offsets"]["blocks/0"].as_u64().unwrap_or(0);
        assert_eq!(blocks_next, height, "round {round}: block offset and tip disagree: {report}");
        // Every transaction message consumed is either confirmed or pooled.
        let txs_next = report["offsets"]["transactions/0"].as_u64().unwrap_or(0);
        let transfers = report["confirmed_transfers"].as_u64().unwrap();
        let pooled = report["mempool_len"].as_u64().unwrap();
        assert_eq!(transfers + pooled, txs_next, "round {round}: transactions lost or doubled: {report}");
        heights.push(height);
    }
    assert!(heights.windows(2).all(|w| w[0] <= w[1]), "the tip went backwards: {heights:?}");
    assert!(heights.last().unwrap() > &heights[0], "the writer made no progress: {heights:?}");
}
