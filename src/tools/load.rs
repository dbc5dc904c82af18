//! Funded accounts for the benchmarks, the tools and the tests: keys derived from a label, so
//! every process that needs them (the node's genesis allocations, the load generator, a test)
//! derives the same ones without sharing files. Test-only keys: anyone can derive them.

use crate::core::account::Address;
use crate::core::hash::sha256;
use crate::core::transaction::{ChainTag, Transfer};
use crate::sync::lock;
use ed25519_consensus::SigningKey;
use std::collections::BTreeMap;

/// What each load account holds at genesis: enough for any benchmark's transfers of 1 unit.
pub const LOAD_BALANCE: u64 = 1_000_000_000_000;

/// A key derived from `label`: the same on every run and in every process.
pub fn derived_key(label: &str) -> SigningKey {
    SigningKey::from(sha256(label.as_bytes()))
}

/// A reward address for the node `node_id` (its key is derivable, so only for tests and
/// benchmarks).
pub fn miner_address(node_id: &str) -> Address {
    Address::of_key(&derived_key(&format!("kafkachain-miner/{node_id}")))
}

/// `count` funded accounts with derived keys.
pub struct LoadAccounts {
    keys: Vec<SigningKey>,
    addresses: Vec<Address>,
}

impl LoadAccounts {
    /// The first `count` load accounts.
    pub fn new(count: usize) -> Self {
        let keys: Vec<SigningKey> = (0..count).map(|i| derived_key(&format!("kafkachain-load/{i}"))).collect();
        let addresses = keys.iter().map(Address::of_key).collect();
        LoadAccounts { keys, addresses }
    }

    /// Genesis allocations giving each account [`LOAD_BALANCE`].
    pub fn allocations(&self) -> BTreeMap<Address, u64> {
        self.addresses.iter().map(|address| (*address, LOAD_BALANCE)).collect()
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key of account `i`.
    pub fn key(&self, i: usize) -> &SigningKey {
        &self.keys[i % self.keys.len()]
    }

    /// The address of account `i`.
    pub fn address(&self, i: usize) -> Address {
        self.addresses[i % self.addresses.len()]
    }

    /// The `n`th transfer of a load that goes round the accounts: account `n % len` sends 1 unit
    /// (no fee) to the next account with nonce `n / len`, so transfers signed in order of `n`
    /// are valid in that order from genesis.
    pub fn transfer(&self, chain: ChainTag, n: u64) -> Transfer {
        let count = self.keys.len() as u64;
        let sender = (n % count) as usize;
        Transfer::sign(self.key(sender), chain, self.address(sender + 1), 1, 0, n / count)
    }
}

/// One load client's signed transfers: request bodies for `POST /transactions/batch`, from the
/// client's own share of the load accounts, round them with rising nonces. No two clients of a
/// load share a sender, so no transfer is signed twice and none waits on another client's.
pub struct ClientLoad {
    accounts: LoadAccounts,
    chain: ChainTag,
    first_sender: usize,
    nonces: Vec<u64>,
    next_slot: usize,
}

impl ClientLoad {
    /// Client `client` of `clients`, signing for the chain tagged `chain`.
    pub fn new(client: usize, clients: usize, chain: ChainTag) -> Self {
        let accounts = LoadAccounts::new(crate::tools::cluster::LOAD_ACCOUNTS);
        let share = (accounts.len() / clients.max(1)).max(1);
        ClientLoad { accounts, chain, first_sender: client * share, nonces: vec![0; share], next_slot: 0 }
    }

    /// The next request body: `batch` transfers of 1 unit, without fee.
    pub fn next_body(&mut self, batch: usize) -> String {
        let transfers: Vec<serde_json::Value> = (0..batch)
            .map(|_| {
                let slot = self.next_slot;
                self.next_slot = (slot + 1) % self.nonces.len();
                let sender = self.first_sender + slot;
                let to = self.accounts.address(sender + 1);
                let transfer = Transfer::sign(self.accounts.key(sender), self.chain, to, 1, 0, self.nonces[slot]);
                self.nonces[slot] += 1;
                serde_json::json!(crate::json::SignedTransferJson::from(&transfer))
            })
            .collect();
        serde_json::json!({ "transactions": transfers }).to_string()
    }
}

/// Next nonce of each load account on each network, for [`named_transfer`]: tools and tests
/// sign as wallets do, counting their own nonces instead of asking a node that may not have read
/// their last transfer back yet.
static NEXT_NONCES: std::sync::Mutex<BTreeMap<(String, usize), u64>> = std::sync::Mutex::new(BTreeMap::new());

/// A signed transfer of `amount` between two named parties on `network` (a topic prefix): the
/// sender is the load account (of the first `accounts`) the name hashes to, with its next nonce
/// on that network; the recipient an address derived from its name.
pub fn named_transfer(
    network: &str,
    chain: ChainTag,
    accounts: usize,
    sender: &str,
    recipient: &str,
    amount: u64,
) -> Transfer {
    let digest = sha256(sender.as_bytes());
    let index = (u64::from_le_bytes(digest[..8].try_into().unwrap_or_default()) % accounts as u64) as usize;
    let key = derived_key(&format!("kafkachain-load/{index}"));
    let to = Address::of_key(&derived_key(&format!("kafkachain-name/{recipient}")));
    let mut nonces = lock(&NEXT_NONCES);
    let next = nonces.entry((network.to_owned(), index)).or_default();
    let transfer = Transfer::sign(&key, chain, to, amount, 0, *next);
    *next += 1;
    transfer
}
