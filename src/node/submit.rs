//! The write path: transfers submitted over HTTP (admitted, verified, published) and blocks
//! mined on demand.

use super::error::NodeError;
use super::mining::MinedBlock;
use super::Node;
use crate::core::account::{Account, Address};
use crate::core::admission;
use crate::core::admission::{Pending, Refusal};
use crate::core::chain::ChainView;
use crate::core::hash::TxId;
use crate::core::transaction::{signature_verdicts, Transfer};
use std::collections::{HashMap, HashSet};
use tokio::sync::oneshot;

/// A count taken from a shared counter for as long as it lives.
struct Reservation<'a> {
    counter: &'a std::sync::atomic::AtomicU64,
    amount: u64,
}

impl<'a> Reservation<'a> {
    fn take(counter: &'a std::sync::atomic::AtomicU64, amount: u64) -> Self {
        counter.fetch_add(amount, std::sync::atomic::Ordering::SeqCst);
        Self { counter, amount }
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(self.amount, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Node {
    /// Publishes signed transfers and returns once Kafka acknowledged all of them, with their
    /// ids and the height of the block they are expected in. Nothing is published unless every
    /// transfer passes admission: a valid signature (verified in batches over the cores), and a
    /// nonce and balance that fit the tip plus what the sender has pending, this request's
    /// earlier transfers included.
    pub async fn submit_transactions(&self, txs: Vec<Transfer>) -> Result<(Vec<TxId>, u64), NodeError> {
        self.refuse_unless_running()?;
        // The cheap rules first: a request that breaks them costs no signature checks.
        let accounts = self.check_admission(&txs)?;
        let chain = self.inner.store.params().chain_tag();
        let pool = self.inner.submit_verifier.clone();
        let txs = tokio::task::spawn_blocking(move || {
            // On the submissions' own threads: the applier's verification keeps the cores of
            // rayon's global pool, whatever clients send.
            match pool.install(|| signature_verdicts(&txs, chain)).iter().position(|valid| !valid) {
                Some(index) => Err(NodeError::Refused { index, refusal: Refusal::BadSignature }),
                None => Ok(txs),
            }
        })
        .await
        .map_err(NodeError::task("signature check"))??;
        // Transfers being published count against the bound too, so concurrent requests cannot
        // all pass the same check.
        let _reserved = Reservation::take(&self.inner.publishing, txs.len() as u64);
        let max = self.inner.config.storage.max_mempool;
        // This request's own transfers are among those reserved: room for one more is asked.
        let others = self.inner.publishing.load(std::sync::atomic::Ordering::SeqCst).saturating_sub(1);
        for (index, tx) in txs.iter().enumerate() {
            let next_nonce = accounts.get(&tx.sender).map_or(0, |account| account.nonce);
            self.inner
                .store
                .mempool_room_for(tx, next_nonce, max, others)
                .map_err(|refusal| NodeError::Refused { index, refusal })?;
        }
        let publisher = &self.inner.publisher;
        let acks = futures_util::future::join_all(txs.iter().map(|tx| publisher.publish_transaction(tx))).await;
        let mut first_error = None;
        for ack in acks {
            match ack {
                Ok(acked) => self.inner.own_transactions.published(acked),
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        if let Some(e) = first_error {
            return Err(e.into());
        }
        let ids: Vec<TxId> = txs.iter().map(|t| t.id(chain)).collect();
        self.inner.verified.insert_all(&ids);
        Ok((ids, self.inner.store.tip()?.height + 1))
    }

    /// Checks each transfer against the tip and what its sender has pending (the earlier ones of
    /// `txs` included), so a client learns which rule a transfer breaks instead of seeing it
    /// dropped when the node reads it back. Returns each sender's account, as read.
    fn check_admission(&self, txs: &[Transfer]) -> Result<HashMap<Address, Account>, NodeError> {
        let store = &self.inner.store;
        let chain = store.params().chain_tag();
        let max_ahead = self.inner.config.storage.max_nonce_ahead;
        let mut in_request: HashMap<Address, (HashSet<u64>, u64)> = HashMap::new();
        let mut accounts: HashMap<Address, Account> = HashMap::new();
        for (index, tx) in txs.iter().enumerate() {
            if store.is_pooled(&tx.id(chain)) {
                return Err(NodeError::Refused { index, refusal: Refusal::AlreadyPooled });
            }
            let account = match accounts.get(&tx.sender) {
                Some(account) => *account,
                None => *accounts.entry(tx.sender).or_insert(store.account(&tx.sender)?.unwrap_or_default()),
            };
            let pooled = store.pending(&tx.sender, tx.nonce);
            let (nonces, cost) = in_request.entry(tx.sender).or_default();
            if nonces.contains(&tx.nonce) {
                // Two transfers of one request with one nonce: the second replaces nothing.
                let refusal = Refusal::NonceTaken { nonce: tx.nonce, min_fee: None };
                return Err(NodeError::Refused { index, refusal });
            }
            let pending = Pending { taken: pooled.taken, cost: pooled.cost.saturating_add(*cost) };
            let added = admission::check(tx, account, pending, max_ahead)
                .map_err(|refusal| NodeError::Refused { index, refusal })?;
            nonces.insert(tx.nonce);
            *cost = cost.saturating_add(added);
        }
        Ok(accounts)
    }

    /// Mines one block and returns it once it has been read back from the topic and applied.
    pub async fn mine(&self) -> Result<MinedBlock, NodeError> {
        self.refuse_unless_running()?;
        let (reply, answer) = oneshot::channel();
        self.inner.mine_requests.send(reply).await.map_err(|_| NodeError::ShuttingDown)?;
        answer.await.map_err(|_| NodeError::ShuttingDown)?
    }

    /// Fails unless the applier runs: nothing this node would publish could be applied here.
    fn refuse_unless_running(&self) -> Result<(), NodeError> {
        self.inner.applier.state().writable()
    }
}
