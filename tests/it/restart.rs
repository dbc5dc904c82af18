//! Restart from stored offsets: a node killed with SIGKILL while blocks keep flowing comes back,
//! reads no message it had already applied, and catches up to the same tip.

use crate::common::{TestNet, KAFKACHAIN};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[test]
fn a_killed_node_resumes_at_its_stored_offsets() {
    let mut net = TestNet::start("restart", 2);
    for i in 0..3 {
        net.nodes[1].submit("alice", "bob", i + 1);
        net.nodes[1].mine();
    }
    net.wait_converged(3, Duration::from_secs(30));

    let flowing = AtomicBool::new(true);
    let (victim, producer) = {
        let (a, b) = net.nodes.split_at_mut(1);
        (&mut a[0], &b[0])
    };
    let before_kill = std::thread::scope(|s| {
        let feeder = s.spawn(|| {
            let mut rounds = 0;
            while flowing.load(Ordering::Relaxed) || rounds < 10 {
                producer.submit("carol", "dave", rounds + 1);
                producer.mine();
                rounds += 1;
            }
            rounds
        });
        std::thread::sleep(Duration::from_millis(800));
        victim.kill();
        let killed_at = producer.status()["height"].as_u64().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        victim.spawn().unwrap();
        victim.wait_ready();
        flowing.store(false, Ordering::Relaxed);
        let rounds = feeder.join().unwrap();
        assert!(rounds >= 10);
        killed_at
    });

    let (height, _) = net.wait_converged(before_kill + 1, Duration::from_secs(60));
    let victim = &net.nodes[0];
    let status = victim.status();
    assert_eq!(status["reread_since_start"], 0, "{status}");
    assert_eq!(
        status["consumed_since_start"].as_u64().unwrap(),
        crate::common::offsets_read(&status, |_| true, true),
        "{status}"
    );
    let start_blocks = status["start_offsets"].as_object().unwrap().iter().find(|(k, _)| k.ends_with(".blocks/0"));
    let start_blocks = start_blocks.expect("the node had stored a blocks offset before the kill").1.as_u64().unwrap();
    assert!(start_blocks >= 3, "the restarted node resumed from offset {start_blocks}, not from its stored state");
    assert_eq!(status["blocks_next_offset"].as_u64().unwrap(), height, "one block message per height here");
    assert_eq!(victim.chain(), net.nodes[1].chain());

    // A clean stop exits 0 and leaves a consistent store.
    let victim = &mut net.nodes[0];
    assert_eq!(victim.terminate(), Some(0), "SIGTERM should exit 0");
    // Every handle on the store was released, so the shutdown checkpoint could reopen it.
    let tail = victim.log_tail(5);
    assert!(tail.contains("store checkpointed for a fast next start"), "{tail}");
    let check = Command::new(KAFKACHAIN).args(["check-store", "--data-dir"]).arg(&victim.data_dir).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));

    // Restarted with nothing new in the topics, it reads nothing at all.
    victim.spawn().unwrap();
    victim.wait_ready();
    crate::common::wait_for("the restarted node to catch up", Duration::from_secs(30), || {
        (victim.status()["caught_up"] == true).then_some(())
    });
    std::thread::sleep(Duration::from_secs(1)); // time to read anything it would wrongly re-read
    let status = victim.status();
    assert_eq!(status["consumed_since_start"], 0, "{status}");
    assert_eq!(status["height"].as_u64().unwrap(), height);
}
