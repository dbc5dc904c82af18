//! Nodes on a secured Kafka, set up as operators set theirs (`scripts/kafka up --secure`): only
//! TLS listeners, SCRAM, PLAIN and mutual TLS, an authorizer with per-principal ACLs, topics made
//! by the admin. Nodes of all three kinds agree on one chain; a read-only observer follows it and
//! its writes fail at once; a stranger can do nothing to the topics (checked with Kafka's own
//! tools); every bad setting stops the node within seconds with one line naming it.

use crate::common::secure::{script, Secure};
use crate::common::{wait_for, TestNet};
use kafkachain::config::{KafkaConfig, SaslConfig, SaslMechanism};
use kafkachain::tools::cluster::unique_prefix;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The secured cluster the script runs (started on first use).
fn secure() -> &'static Secure {
    static SECURE: OnceLock<Secure> = OnceLock::new();
    SECURE.get_or_init(|| {
        let up = script().args(["up", "--secure"]).output().unwrap();
        assert!(up.status.success(), "scripts/kafka up --secure: {}", String::from_utf8_lossy(&up.stderr));
        let root = std::env::var_os("KAFKACHAIN_KAFKA_DIR")
            .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".kafka"), PathBuf::from);
        Secure::at(root.join("secure"), &String::from_utf8(up.stdout).unwrap())
    })
}

/// The topics of a network on `prefix`, made by the admin as an operator would.
fn create_topics(secure: &Secure, prefix: &str) {
    for args in crate::common::topic_creations(prefix, "") {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = secure.tool("admin", "org.apache.kafka.tools.TopicCommand", &args);
        assert!(out.status.success(), "creating {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// A fresh network prefix the ACLs cover, with its topics made.
fn network(test: &str) -> String {
    let prefix = unique_prefix(&format!("kafkachain-it-{test}"));
    create_topics(secure(), &prefix);
    prefix
}

#[test]
fn nodes_logging_in_with_scram_plain_and_mutual_tls_agree_on_one_chain() {
    let secure = secure();
    let net = TestNet::start_on(network("trio"), 3, |spec| match spec.id.as_str() {
        "n1" => secure.sasl(&mut spec.kafka, "node1", SaslMechanism::ScramSha512),
        "n2" => secure.sasl(&mut spec.kafka, "node2", SaslMechanism::Plain),
        _ => secure.mutual_tls(&mut spec.kafka, "node3"),
    });
    for (i, node) in net.nodes.iter().enumerate() {
        node.submit(&format!("payer-{i}"), "payee", 5);
        wait_for("the transfer pooled", Duration::from_secs(30), || (node.status()["mempool"] != 0).then_some(()));
        let block = node.mine();
        assert_eq!(block["transactions"].as_array().unwrap().len(), 2, "{block}");
        net.wait_converged(i as u64 + 1, Duration::from_secs(30));
    }
    let chains: Vec<_> = net.nodes.iter().map(|n| n.chain()).collect();
    assert_eq!(chains[0].len(), 4);
    assert!(chains.iter().all(|c| *c == chains[0]), "one chain on every node");
}

#[test]
fn a_read_only_observer_follows_the_chain_and_its_writes_fail_at_once() {
    let secure = secure();
    let net = TestNet::start_on(network("observer"), 2, |spec| match spec.id.as_str() {
        "n1" => secure.sasl(&mut spec.kafka, "node1", SaslMechanism::ScramSha512),
        _ => secure.sasl(&mut spec.kafka, "reader", SaslMechanism::ScramSha256),
    });
    let (writer, observer) = (&net.nodes[0], &net.nodes[1]);
    writer.mine();
    writer.mine();
    net.wait_converged(2, Duration::from_secs(30));
    let asked = Instant::now();
    let (code, answer) = observer.post("/transactions/new", observer.signed_body("observer", "anyone", 1));
    assert_eq!(code, 503, "{answer}");
    let reason = answer["error"].as_str().unwrap_or_default().to_ascii_lowercase();
    assert!(reason.contains("authoriz"), "the reason says the principal may not write: {answer}");
    let (code, answer) = observer.get("/mine");
    assert_eq!(code, 503, "{answer}");
    assert!(asked.elapsed() < Duration::from_secs(25), "answered, not hung: {:?}", asked.elapsed());
    assert_eq!(observer.status()["height"], 2, "it still follows");
}

/// Whether a tool's run was refused for want of rights (its own words, on either stream).
fn refused(out: &Output) -> bool {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    text.contains("AuthorizationException") || text.contains("not authorized") || text.contains("Not authorized")
}

#[test]
fn a_stranger_cannot_write_delete_alter_or_hold_a_transaction_on_the_topics() {
    let secure = secure();
    let prefix = network("stranger");
    let blocks = format!("{prefix}.blocks");
    for topic in [blocks.as_str(), &format!("{prefix}.transactions")] {
        let produce = ["--topic", topic, "--num-records", "1", "--record-size", "10", "--throughput", "-1"];
        let out = secure.tool("stranger", "org.apache.kafka.tools.ProducerPerformance", &produce);
        assert!(refused(&out), "stranger produced to {topic}: {}", String::from_utf8_lossy(&out.stdout));
        let mut transactional = produce.to_vec();
        transactional.extend(["--transactional-id", "stranger-tx", "--transaction-duration-ms", "60000"]);
        let out = secure.tool("stranger", "org.apache.kafka.tools.ProducerPerformance", &transactional);
        assert!(refused(&out), "stranger opened a transaction on {topic}: {}", String::from_utf8_lossy(&out.stdout));
    }
    let out = secure.tool("stranger", "org.apache.kafka.tools.TopicCommand", &["--delete", "--topic", &blocks]);
    assert!(!out.status.success(), "stranger deleted {blocks}");
    let alter = ["--alter", "--entity-type", "topics", "--entity-name", &blocks, "--add-config", "retention.ms=1"];
    let out = secure.tool("stranger", "org.apache.kafka.tools.ConfigCommand", &alter);
    assert!(!out.status.success(), "stranger altered {blocks}");
    // The admin still sees the topic as it was.
    let out = secure.tool(
        "admin",
        "org.apache.kafka.tools.ConfigCommand",
        &["--describe", "--entity-type", "topics", "--entity-name", &blocks],
    );
    let described = String::from_utf8_lossy(&out.stdout);
    assert!(described.contains("retention.ms=-1") && !described.contains("retention.ms=1 "), "{described}");
}

/// The ledger topic of `prefix` and its grants, made by the admin as `scripts/kafka up --secure`
/// makes the devnet's: the publisher's principal may write it, the nodes may not.
fn ledger_topic(secure: &Secure, prefix: &str) -> String {
    let topic = format!("{prefix}.ledger");
    let admin = |args: &[&str]| {
        let class = if args[0] == "--create" {
            "org.apache.kafka.tools.TopicCommand"
        } else {
            "org.apache.kafka.tools.AclCommand"
        };
        let out = secure.tool("admin", class, args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    admin(&[
        "--create",
        "--topic",
        &topic,
        "--partitions",
        "1",
        "--replication-factor",
        "1",
        "--config",
        "retention.ms=-1",
    ]);
    admin(&[
        "--add",
        "--force",
        "--allow-principal",
        "User:ledger1",
        "--topic",
        &topic,
        "--operation",
        "Write",
        "--operation",
        "Describe",
    ]);
    admin(&["--add", "--force", "--deny-principal", "User:node1", "--topic", &topic, "--operation", "Write"]);
    topic
}

#[test]
fn the_ledger_publisher_logs_in_as_its_own_principal_and_only_it_writes_the_ledger() {
    let secure = secure();
    let prefix = network("ledger");
    let topic = ledger_topic(secure, &prefix);
    let net = TestNet::start_on(prefix.clone(), 1, |spec| {
        secure.sasl(&mut spec.kafka, "node1", SaslMechanism::ScramSha512);
        spec.ledger.enabled = true;
        spec.ledger.confirmations = 1;
        spec.ledger.sasl = Some(SaslConfig {
            mechanism: SaslMechanism::ScramSha512,
            username: "ledger1".into(),
            password_file: Some(secure.client_file("ledger1.password")),
            password_env: None,
        });
    });
    let node = &net.nodes[0];
    node.submit("ledger-payer", "ledger-payee", 3);
    node.mine();
    node.mine();
    let ledger = wait_for("the stream to catch up", Duration::from_secs(60), || {
        let ledger = node.status()["ledger"].clone();
        (ledger["state"] == "publishing" && ledger["lag_blocks"] == 0).then_some(ledger)
    });
    assert_eq!(ledger["next_seq"], 3, "{ledger}");
    // The reader principal reads it, committed transactions only (in a group of its prefix).
    let out = secure.tool(
        "reader",
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        &[
            "--topic",
            &topic,
            "--group",
            &prefix,
            "--from-beginning",
            "--isolation-level",
            "read_committed",
            "--timeout-ms",
            "5000",
        ],
    );
    let events: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let heights: Vec<u64> = events.iter().map(|e| e["height"].as_u64().unwrap()).collect();
    assert_eq!(heights, [0, 1, 2], "{}", String::from_utf8_lossy(&out.stderr));
    // A node's principal may not write the ledger, nor the ledger's the consensus topics.
    for (principal, target) in [("node1", topic.clone()), ("ledger1", format!("{prefix}.blocks"))] {
        let out = secure.tool(
            principal,
            "org.apache.kafka.tools.ProducerPerformance",
            &["--topic", &target, "--num-records", "1", "--record-size", "10", "--throughput", "-1"],
        );
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(
            said.contains("TopicAuthorizationException") || said.contains("not authorized"),
            "{principal} wrote {target}: {said}"
        );
    }
}

#[test]
fn kafkas_own_acl_listing_shows_exactly_what_the_readme_documents() {
    let out = secure().tool("admin", "org.apache.kafka.tools.AclCommand", &["--list"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut resource = String::new();
    let mut grants = BTreeSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(rest) = line.strip_prefix("Current ACLs for resource `ResourcePattern(resourceType=") {
            let kind = rest.split(',').next().unwrap_or_default();
            let name = rest.split("name=").nth(1).and_then(|n| n.split(',').next()).unwrap_or_default();
            resource = format!("{kind}:{name}");
        } else if let Some(grant) = line.trim().strip_prefix("(principal=User:") {
            let principal = grant.split(',').next().unwrap_or_default();
            let operation = grant.split("operation=").nth(1).and_then(|o| o.split(',').next()).unwrap_or_default();
            let denied = if grant.contains("permissionType=DENY") { " denied" } else { "" };
            grants.insert(format!("{resource} {principal} {operation}{denied}"));
        }
    }
    let mut expected = BTreeSet::new();
    for node in ["node1", "node2", "node3"] {
        for operation in ["READ", "WRITE", "DESCRIBE", "DESCRIBE_CONFIGS"] {
            expected.insert(format!("TOPIC:kafkachain {node} {operation}"));
        }
        for operation in ["READ", "DESCRIBE"] {
            expected.insert(format!("GROUP:kafkachain {node} {operation}"));
        }
        expected.insert(format!("CLUSTER:kafka-cluster {node} IDEMPOTENT_WRITE"));
    }
    for operation in ["WRITE", "DESCRIBE"] {
        expected.insert(format!("TOPIC:kafkachain.ledger ledger1 {operation}"));
        expected.insert(format!("TRANSACTIONAL_ID:kafkachain-ledger ledger1 {operation}"));
    }
    for node in ["node1", "node2", "node3"] {
        expected.insert(format!("TOPIC:kafkachain.ledger {node} WRITE denied"));
    }
    for operation in ["READ", "DESCRIBE", "DESCRIBE_CONFIGS"] {
        expected.insert(format!("TOPIC:kafkachain reader {operation}"));
    }
    for operation in ["READ", "DESCRIBE"] {
        expected.insert(format!("GROUP:kafkachain reader {operation}"));
    }
    // Only the suite's prefix: a devnet run on the same cluster adds its own prefix's.
    grants.retain(|grant| {
        !grant.starts_with("TOPIC:")
            || grant.starts_with("TOPIC:kafkachain ")
            || grant.starts_with("TOPIC:kafkachain.ledger ")
    });
    assert_eq!(grants, expected);
}

#[test]
fn each_bad_setting_stops_the_node_within_seconds_with_one_line_naming_it() {
    let secure = secure();
    let prefix = network("bad-settings");
    let dir = tempfile::tempdir().unwrap();
    let private = |name: &str, text: &str, mode: u32| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
        path
    };
    let wrong = private("wrong", "not-the-password\n", 0o600);
    let open = private("open", "whatever\n", 0o644);
    let other_ca = dir.path().join("other-ca.pem");
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=someone else"])
        .arg("-keyout")
        .arg(dir.path().join("other-ca.key"))
        .arg("-out")
        .arg(&other_ca)
        .output()
        .unwrap();
    assert!(made.status.success());
    let scram = |kafka: &mut KafkaConfig| secure.sasl(kafka, "node1", SaslMechanism::ScramSha512);
    let base = KafkaConfig { topic_prefix: prefix.clone(), ..KafkaConfig::default() };
    let case = |change: &dyn Fn(&mut KafkaConfig)| {
        let mut kafka = base.clone();
        scram(&mut kafka);
        change(&mut kafka);
        kafka
    };
    let sasl_case = |change: &dyn Fn(&mut SaslConfig)| case(&|k: &mut KafkaConfig| change(k.sasl.as_mut().unwrap()));
    let cases: Vec<(&str, KafkaConfig, &str)> = vec![
        (
            "a wrong password",
            sasl_case(&|s| s.password_file = Some(wrong.clone())),
            "kafka.sasl: the brokers refused the login",
        ),
        ("an unknown user", sasl_case(&|s| s.username = "nobody".into()), "kafka.sasl: the brokers refused the login"),
        (
            "another authority",
            case(&|k| k.tls.as_mut().unwrap().ca_file = Some(other_ca.clone())),
            "kafka.tls.ca_file: the broker's certificate is not signed",
        ),
        (
            "a host the broker's certificate does not name",
            case(&|k| k.brokers = k.brokers.replace("127.0.0.1", "localhost")),
            "kafka.tls.verify_hostname: the broker's certificate is signed by a trusted authority but does not name",
        ),
        (
            "a plaintext port to a TLS client",
            case(&|k| k.brokers = crate::common::brokers()),
            "kafka.brokers: the listener does not speak TLS",
        ),
        (
            "a TLS port to a plaintext client",
            case(&|k| {
                k.tls = None;
                k.sasl = None;
            }),
            "kafka.brokers: the listener expects TLS or SASL",
        ),
        (
            "a missing file",
            case(&|k| k.tls.as_mut().unwrap().ca_file = Some(dir.path().join("missing.pem"))),
            "kafka.tls.ca_file: reading",
        ),
        (
            "a password others may read",
            sasl_case(&|s| s.password_file = Some(open.clone())),
            "kafka.sasl.password_file:",
        ),
    ];
    for (what, kafka, reason) in cases {
        let (code, text, took) = crate::common::run_until_exit(kafka);
        assert!(code.is_some_and(|c| c != 0), "{what}: exit {code:?}\n{text}");
        assert!(took < Duration::from_secs(10), "{what}: took {took:?}\n{text}");
        assert_eq!(text.matches(reason).count(), 1, "{what}: said once\n{text}");
        assert!(!text.contains("not-the-password"), "{what}: the password was shown\n{text}");
    }
}
