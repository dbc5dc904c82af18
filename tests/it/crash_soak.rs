//! Crash soak: under steady load (transfers on every node, blocks mined on every node), a random
//! node is SIGKILLed at a random moment and restarted, again and again. At the end all nodes hold
//! the same chain, and every transaction Kafka acknowledged is in it exactly once.
//! Rounds: `KAFKACHAIN_SOAK_ROUNDS` (default 3; `scripts/crash-soak` runs 50).

use crate::common::{transfer_ids, TestNet};
use rand::Rng;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

#[test]
fn random_sigkills_under_load_lose_nothing() {
    let rounds: usize = std::env::var("KAFKACHAIN_SOAK_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let mut net = TestNet::start("soak", 3);
    let urls: Vec<String> = net.nodes.iter().map(|n| n.url.clone()).collect();
    let network = net.prefix.clone();
    let signed = |sender: &str, amount: u64| {
        let chain = kafkachain::core::transaction::ChainTag::of(crate::common::CHAIN_ID);
        let accounts = kafkachain::tools::cluster::LOAD_ACCOUNTS;
        let transfer = kafkachain::tools::load::named_transfer(&network, chain, accounts, sender, "sink", amount);
        serde_json::json!(kafkachain::json::SignedTransferJson::from(&transfer)).to_string()
    };
    let acked = Mutex::new(Vec::<String>::new());
    let running = AtomicBool::new(true);
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();

    std::thread::scope(|s| {
        for worker in 0..2 {
            let (urls, acked, running, http, signed) = (&urls, &acked, &running, &http, &signed);
            s.spawn(move || {
                let mut n = 0u64;
                let mut pending = String::new();
                while running.load(Ordering::Relaxed) {
                    n += 1;
                    let url = &urls[(n as usize + worker) % urls.len()];
                    let body = if pending.is_empty() { signed(&format!("w{worker}"), n) } else { pending.clone() };
                    let answer = http
                        .post(format!("{url}/transactions/new"))
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send();
                    // A transfer no node decided on (it was down) is sent again, so a lost one
                    // never leaves a gap in the sender's nonces.
                    pending.clear();
                    match answer {
                        Ok(response) if response.status() == 201 => {
                            let value: serde_json::Value = response.json().unwrap();
                            acked.lock().unwrap().push(value["transaction_id"].as_str().unwrap().to_owned());
                        }
                        Ok(response) if response.status() == 409 => {
                            let value: serde_json::Value = response.json().unwrap_or_default();
                            if !crate::common::already_there(&value) {
                                pending = body;
                            }
                        }
                        _ => pending = body,
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
        }
        let (urls, running, http) = (&urls, &running, &http);
        s.spawn(move || {
            let mut n = 0;
            while running.load(Ordering::Relaxed) {
                n += 1;
                // A node being killed answers with an error or not at all; the next one mines.
                let _ = http.get(format!("{}/mine", urls[n % urls.len()])).send();
            }
        });

        let mut rng = rand::thread_rng();
        let mut kills: HashMap<String, usize> = HashMap::new();
        for _ in 0..rounds {
            std::thread::sleep(Duration::from_millis(rng.gen_range(200..1200)));
            let victim = &mut net.nodes[rng.gen_range(0..3)];
            victim.kill();
            *kills.entry(victim.id.clone()).or_default() += 1;
            std::thread::sleep(Duration::from_millis(rng.gen_range(50..500)));
            victim.spawn().unwrap();
            victim.wait_ready();
        }
        std::thread::sleep(Duration::from_millis(500));
        running.store(false, Ordering::Relaxed);
        println!("soak: {rounds} SIGKILLs {kills:?}");
    });

    // Drain: mine until no node holds a pending transaction, then compare.
    net.drain_mempools(Duration::from_secs(120));
    let (height, _) = net.wait_converged(1, Duration::from_secs(60));
    let chains: Vec<_> = net.nodes.iter().map(|n| n.chain()).collect();
    assert!(chains.iter().all(|c| *c == chains[0]), "nodes disagree on /chain");
    let on_chain = transfer_ids(&chains[0]);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in &on_chain {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    assert!(counts.values().all(|c| *c == 1), "a transaction is in the chain twice");
    let acked = acked.into_inner().unwrap();
    let missing: Vec<&String> = acked.iter().filter(|id| !counts.contains_key(id.as_str())).collect();
    println!(
        "soak: height {height}, {} acknowledged transactions, {} on the chain, {} missing",
        acked.len(),
        on_chain.len(),
        missing.len()
    );
    assert!(missing.is_empty(), "acknowledged transactions lost: {missing:?}");
    assert!(acked.len() > 10, "the load did not run");
    for node in &net.nodes {
        assert_eq!(node.status()["reread_since_start"], 0);
    }
}
