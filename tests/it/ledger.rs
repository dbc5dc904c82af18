//! The ledger stream on the real broker, read by Kafka's own console consumer with
//! `read_committed`: the topic replays to exactly the node's main chain after SIGKILLs at random
//! moments, every transfer once, sequence numbers without gap or repeat; a reorganization comes
//! out as disconnects then connects, or not at all when it is shallower than the
//! confirmations; a second publisher with the same transactional id takes over and the first
//! says it was fenced. Every event validates against `docs/ledger-event.schema.json`.

use crate::common::{produce, secure, tip_block, transfer_ids, wait_for, NodeProc, TestNet, CHAIN_ID};
use kafkachain::core::block::Block;
use kafkachain::core::miner::solved;
use kafkachain::core::transaction::{ChainTag, Transaction};
use kafkachain::kafka::wire::encode_message;
use kafkachain::tools::load::miner_address;
use rand::Rng;
use serde_json::Value;
use std::time::Duration;

/// Every committed event of `prefix`'s ledger topic, read from the beginning by Kafka's console
/// consumer with `read_committed`.
fn committed_events(prefix: &str) -> Vec<Value> {
    let output = secure::script()
        .args(["tool", "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server"])
        .arg(crate::common::brokers())
        .args(["--topic", &format!("{prefix}.ledger"), "--from-beginning", "--isolation-level", "read_committed"])
        .args(["--timeout-ms", "4000"])
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let schema: Value =
        serde_json::from_str(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/ledger-event.schema.json")))
            .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            if let Err(error) = validator.validate(&event) {
                panic!("{error}: {event}");
            }
            event
        })
        .collect()
}

/// The main chain a consumer holds after applying `events` in order (block hashes by height),
/// asserting the sequence has no gap or repeat and each event fits the chain held.
fn replay(events: &[Value]) -> Vec<String> {
    let mut held: Vec<String> = Vec::new();
    for (expected_seq, event) in events.iter().enumerate() {
        assert_eq!(event["seq"], expected_seq as u64, "one sequence, no gap, no repeat: {event}");
        let hash = event["hash"].as_str().unwrap().to_owned();
        match event["type"].as_str().unwrap() {
            "connect" => {
                assert_eq!(event["height"], held.len() as u64, "{event}");
                if let Some(tip) = held.last() {
                    assert_eq!(event["prev_hash"], tip.as_str(), "{event}");
                }
                held.push(hash);
            }
            _ => assert_eq!(held.pop(), Some(hash), "a disconnect takes the tip away: {event}"),
        }
    }
    held
}

/// Waits until the node's stream has caught up with its chain.
fn published_up_to_date(node: &NodeProc) -> Value {
    wait_for("the ledger stream to catch up", Duration::from_secs(60), || {
        let status = node.status();
        let ledger = &status["ledger"];
        (ledger["state"] == "publishing" && ledger["lag_blocks"] == 0).then(|| ledger.clone())
    })
}

fn streaming(confirmations: u64) -> impl Fn(&mut kafkachain::tools::cluster::NodeSpec) {
    move |spec| {
        spec.ledger.enabled = true;
        spec.ledger.confirmations = confirmations;
        spec.ledger.max_events_per_transaction = 3;
    }
}

#[test]
fn the_ledger_replays_to_the_main_chain_exactly_once_across_sigkills() {
    let mut net = TestNet::start_with("ledger-kill", 1, streaming(1));
    let mut rng = rand::thread_rng();
    for round in 0..4 {
        let node = &net.nodes[0];
        for _ in 0..3 {
            node.submit("alice", "bob", 1 + round);
        }
        node.mine();
        node.mine();
        // Killed at a random moment of publishing what these blocks changed.
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..400)));
        let node = &mut net.nodes[0];
        node.kill();
        node.spawn().unwrap();
        node.wait_ready();
    }
    let node = &net.nodes[0];
    node.mine();
    let ledger = published_up_to_date(node);
    let chain = node.chain();
    let events = committed_events(&net.prefix);
    let held = replay(&events);
    let main: Vec<String> = chain.iter().map(|b| b["hash"].as_str().unwrap().to_owned()).collect();
    assert_eq!(held, main, "the stream holds exactly the main chain");
    assert_eq!(ledger["next_seq"], events.len() as u64);
    // The block mined after the last restart was timed from applied to published.
    assert!(ledger["publish_lag_p99_ms"].is_u64(), "{ledger}");
    let (_, _, metrics) = node.get_text("/metrics");
    let timed = metrics
        .lines()
        .find_map(|line| line.strip_prefix("kafkachain_ledger_publish_lag_seconds_count "))
        .and_then(|count| count.parse::<u64>().ok());
    assert!(timed >= Some(1), "{metrics}");
    let mut streamed: Vec<String> = events
        .iter()
        .flat_map(|e| e["transactions"].as_array().cloned().unwrap_or_default())
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    let confirmed = transfer_ids(&chain);
    assert_eq!(confirmed.len(), 12, "every transfer submitted is confirmed");
    streamed.sort();
    let mut expected = confirmed.clone();
    expected.sort();
    assert_eq!(streamed, expected, "every transfer once");
}

/// A mined block on `parent` with only its reward, to `miner`.
fn block_on(parent: &Block, miner: &str) -> Block {
    let txs = vec![Transaction::reward(miner_address(miner), 50, parent.header.height + 1)];
    let timestamp = kafkachain::clock::now_ms().max(parent.header.timestamp_ms + 1);
    let chain = ChainTag::of(CHAIN_ID);
    solved(Block::candidate(chain, parent.hash(), parent.header.height, parent.header.bits, timestamp, txs)).unwrap()
}

/// Publishes a block at height 1 and then a heavier branch of two beside it, on a node whose
/// stream waits for `confirmations`; returns the node's events and the losing block's hash.
fn reorganized(test: &str, confirmations: u64) -> (Vec<Value>, String, Vec<Value>) {
    let net = TestNet::start_with(test, 1, streaming(confirmations));
    let node = &net.nodes[0];
    let genesis = tip_block(&node.chain());
    let loser = block_on(&genesis, "a");
    let blocks = format!("{}.blocks", net.prefix);
    produce(&blocks, &[encode_message(&loser)]);
    wait_for("the first block stored", Duration::from_secs(30), || {
        (node.status()["tip"] == loser.hash().to_hex()).then_some(())
    });
    if confirmations == 1 {
        wait_for("its connect", Duration::from_secs(30), || (node.status()["ledger"]["height"] == 1).then_some(()));
    }
    let rival = block_on(&genesis, "b");
    let rival_child = block_on(&rival, "b");
    produce(&blocks, &[encode_message(&rival), encode_message(&rival_child)]);
    wait_for("the rival branch to win", Duration::from_secs(30), || {
        (node.status()["tip"] == rival_child.hash().to_hex()).then_some(())
    });
    // Blocks on top, so the branch that won is deep enough to go out.
    for _ in 0..confirmations {
        node.mine();
    }
    published_up_to_date(node);
    (committed_events(&net.prefix), loser.hash().to_hex(), node.chain())
}

#[test]
fn a_reorganization_is_streamed_as_disconnects_then_connects_unless_shallower_than_the_confirmations() {
    let (events, loser, chain) = reorganized("ledger-reorg", 1);
    let kinds: Vec<(&str, u64)> =
        events.iter().map(|e| (e["type"].as_str().unwrap(), e["height"].as_u64().unwrap())).collect();
    assert_eq!(
        &kinds[..5],
        [("connect", 0), ("connect", 1), ("disconnect", 1), ("connect", 1), ("connect", 2)],
        "{events:?}"
    );
    assert_eq!(events[2]["hash"], loser);
    let main: Vec<&str> = chain.iter().map(|b| b["hash"].as_str().unwrap()).collect();
    assert_eq!(replay(&events), main);

    let (events, loser, chain) = reorganized("ledger-deep", 3);
    assert!(events.iter().all(|e| e["type"] == "connect" && e["hash"] != loser.as_str()), "{events:?}");
    let main: Vec<&str> = chain.iter().map(|b| b["hash"].as_str().unwrap()).collect();
    let held = replay(&events);
    assert_eq!(held[..], main[..held.len()], "the stream is the main chain less its last 2 blocks");
    assert_eq!(held.len() + 2, main.len());
}

#[test]
fn a_second_publisher_with_the_same_transactional_id_fences_the_first() {
    let shared_id = |prefix: &str| format!("{prefix}-shared");
    let mut net = TestNet::start_with("ledger-fence", 2, |spec| {
        if spec.id == "n1" {
            streaming(1)(spec);
            spec.ledger.transactional_id = Some(shared_id(&spec.kafka.topic_prefix));
        }
    });
    net.nodes[0].mine();
    published_up_to_date(&net.nodes[0]);
    // The second node starts publishing with the same id: it takes the stream over.
    let second = &mut net.nodes[1];
    second.kill();
    let mut config = kafkachain::config::NodeConfig::load(&second.config).unwrap();
    config.ledger = kafkachain::config::LedgerConfig {
        enabled: true,
        confirmations: 1,
        transactional_id: Some(shared_id(&net.prefix)),
        ..Default::default()
    };
    std::fs::write(&second.config, toml::to_string(&config).unwrap()).unwrap();
    second.spawn().unwrap();
    second.wait_ready();
    published_up_to_date(&net.nodes[1]);
    let (first, second) = (&net.nodes[0], &net.nodes[1]);
    first.mine();
    let fenced = wait_for("the first publisher to be fenced", Duration::from_secs(60), || {
        let ledger = first.status()["ledger"].clone();
        (ledger["state"] == "fenced").then_some(ledger)
    });
    assert!(fenced["error"].as_str().unwrap().contains(&shared_id(&net.prefix)), "{fenced}");
    second.mine();
    published_up_to_date(second);
    let events = committed_events(&net.prefix);
    let main: Vec<String> = second.chain().iter().map(|b| b["hash"].as_str().unwrap().to_owned()).collect();
    assert_eq!(replay(&events), main, "the second publisher went on where the first stopped");
}

#[test]
fn kafka_connect_copies_the_ledger_into_a_file_that_replays_to_the_chain() {
    let net = TestNet::start_with("ledger-connect", 1, streaming(2));
    let node = &net.nodes[0];
    for amount in 1..=3 {
        node.submit("erin", "frank", amount);
        node.mine();
    }
    node.mine();
    let ledger = published_up_to_date(node);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ledger.jsonl");
    let rest_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    // Configured as the Kafka Connect documentation configures a standalone worker and a sink,
    // reading only committed transactions.
    let worker = dir.path().join("worker.properties");
    std::fs::write(
        &worker,
        format!(
            "bootstrap.servers={}\nkey.converter=org.apache.kafka.connect.storage.StringConverter\n\
             value.converter=org.apache.kafka.connect.storage.StringConverter\n\
             offset.storage.file.filename={}\noffset.flush.interval.ms=1000\n\
             consumer.isolation.level=read_committed\nlisteners=http://127.0.0.1:{rest_port}\n",
            crate::common::brokers(),
            dir.path().join("connect.offsets").display(),
        ),
    )
    .unwrap();
    let sink = dir.path().join("sink.properties");
    std::fs::write(
        &sink,
        format!(
            "name=ledger-file\nconnector.class=org.apache.kafka.connect.file.FileStreamSinkConnector\n\
             tasks.max=1\ntopics={}.ledger\nfile={}\n",
            net.prefix,
            out.display()
        ),
    )
    .unwrap();
    let mut connect = secure::script()
        .arg("connect")
        .arg(&worker)
        .arg(&sink)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("connect.log")).unwrap())
        .spawn()
        .unwrap();
    let expected = ledger["next_seq"].as_u64().unwrap() as usize;
    let copied = kafkachain::tools::cluster::poll_until(Duration::from_secs(120), || {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        (text.lines().count() >= expected).then_some(text)
    });
    connect.kill().unwrap();
    connect.wait().unwrap();
    let log = std::fs::read_to_string(dir.path().join("connect.log")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
    let copied =
        copied.unwrap_or_else(|| panic!("Kafka Connect copied too little; its log ends:\n{}", tail.join("\n")));
    let events: Vec<Value> = copied.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let main: Vec<String> = node.chain().iter().map(|b| b["hash"].as_str().unwrap().to_owned()).collect();
    let held = replay(&events);
    assert_eq!(held[..], main[..held.len()], "the file holds the main chain, confirmations deep");
    assert_eq!(held.len() + 1, main.len(), "all but the tip, with two confirmations");
    let transfers = events.iter().map(|e| e["transactions"].as_array().map_or(0, Vec::len)).sum::<usize>();
    assert_eq!(transfers, 3);
}
