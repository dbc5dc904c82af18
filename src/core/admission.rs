//! Mempool admission rules: which signed transfers a node pools and relays. Not consensus (a
//! block is judged by `ledger` alone), but stricter than it in one way: a transfer is admitted
//! only if the sender's balance covers it on top of everything the sender already has pending,
//! so a pool can never hold more spending than the sender's funds.

use super::account::Account;
use super::transaction::{Transfer, TxError};

/// Why a transfer was not pooled. [`Refusal::reason`] is the label rejections are counted by and
/// the API reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not well formed.
    #[error("{0}")]
    Malformed(#[from] TxError),
    /// The signature does not verify over the signing bytes for this chain.
    #[error("the signature does not verify over the transfer's signing bytes for this chain id")]
    BadSignature,
    /// The nonce was already used on the main chain: a replay, or a transfer already confirmed.
    #[error("nonce {got} is already used; the sender's next nonce is {next}")]
    NonceUsed {
        /// The sender's next unused nonce.
        next: u64,
        /// The transfer's nonce.
        got: u64,
    },
    /// The nonce is too far ahead of the sender's next one.
    #[error("nonce {got} is more than {max_ahead} ahead of the sender's next nonce {next}")]
    NonceTooFar {
        /// The sender's next unused nonce.
        next: u64,
        /// The transfer's nonce.
        got: u64,
        /// How far ahead a nonce may be.
        max_ahead: u64,
    },
    /// Another pending transfer of the sender already has this nonce, and this one does not
    /// pay enough more to replace it.
    #[error("a pending transfer of this sender already has nonce {nonce}{}", min_fee.map(|fee| format!("; a replacement must pay a fee of at least {fee}")).unwrap_or_default())]
    NonceTaken {
        /// The nonce both transfers carry.
        nonce: u64,
        /// The least fee a replacement must pay, when one may replace it.
        min_fee: Option<u64>,
    },
    /// The balance does not cover this transfer on top of the sender's pending ones.
    #[error("balance {balance} does not cover amount + fee = {cost} on top of {pending} pending")]
    InsufficientFunds {
        /// The sender's balance at the tip.
        balance: u64,
        /// What the sender's pending transfers already spend.
        pending: u64,
        /// Amount plus fee of this transfer.
        cost: u64,
    },
    /// Already waiting in the mempool.
    #[error("the transfer is already pending")]
    AlreadyPooled,
    /// The mempool is at its bound and this transfer cannot take another's place: it would
    /// wait behind a nonce gap, or it pays no more than what would leave (then `min_fee` is the
    /// least fee that would get it in now).
    #[error("the mempool is full{}", min_fee.map(|fee| format!("; a fee of at least {fee} would be accepted now")).unwrap_or_default())]
    MempoolFull {
        /// The least fee that would be accepted now, when any would.
        min_fee: Option<u64>,
    },
}

impl Refusal {
    /// Short label a refused HTTP submission is counted by (a malformed transfer by its defect).
    pub fn reason(&self) -> &'static str {
        self.labels().0
    }

    /// Label a refused transfer read from the transactions topic is counted by in `/status`
    /// (`tx_` and the kind, so it never mixes with a block's rejection).
    pub fn topic_reason(&self) -> &'static str {
        self.labels().1
    }

    /// Both labels of each refusal, in one table.
    fn labels(&self) -> (&'static str, &'static str) {
        match self {
            Refusal::Malformed(e) => (e.reason(), "tx_malformed"),
            Refusal::BadSignature => ("bad_signature", "tx_bad_signature"),
            Refusal::NonceUsed { .. } => ("nonce_used", "tx_nonce_used"),
            Refusal::NonceTooFar { .. } => ("nonce_too_far", "tx_nonce_too_far"),
            Refusal::NonceTaken { .. } => ("nonce_taken", "tx_nonce_taken"),
            Refusal::InsufficientFunds { .. } => ("insufficient_funds", "tx_insufficient_funds"),
            Refusal::AlreadyPooled => ("duplicate", "tx_duplicate"),
            Refusal::MempoolFull { .. } => ("mempool_full", "tx_mempool_full"),
        }
    }
}

/// What the pool holds for one sender, as admission needs it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// The fee and cost of the sender's pending transfer with the nonce asked about, if any.
    pub taken: Option<Taken>,
    /// Sum of amount + fee over the sender's pending transfers.
    pub cost: u64,
}

/// The nonce window of a transfer read back from the transactions topic: any distance. The node
/// that published it checked the window against its own tip, and this node's tip may lag the
/// blocks topic for a while (a restart, a partition leader moving); refusing here would drop,
/// for good, a transfer the other nodes keep, and a gap only it has would block every later
/// nonce of that sender in its miner. The pool's size bound and the eviction of waiting
/// transfers hold the memory instead.
pub const ANY_NONCE_AHEAD: u64 = u64::MAX;

/// The pending transfer a newcomer with the same sender and nonce would replace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Taken {
    /// Its fee.
    pub fee: u64,
    /// Its amount plus fee.
    pub cost: u64,
}

impl Taken {
    /// The least fee a replacement must pay: a tenth more, and at least 1 more. Growing by a
    /// tenth each time, one nonce can be replaced only a few hundred times before the fee passes
    /// any balance, so replacements cannot make nodes verify and relay without end.
    pub fn replacement_fee(&self) -> u64 {
        self.fee.saturating_add((self.fee / 10).max(1))
    }
}

/// Checks `transfer` (signature already verified) against its sender's account at the tip and
/// what the sender has pending; `max_ahead` bounds how far past the next nonce a transfer may
/// wait for the gap to fill.
pub fn check(transfer: &Transfer, account: Account, pending: Pending, max_ahead: u64) -> Result<u64, Refusal> {
    transfer.check_fields()?;
    let cost = transfer.cost().ok_or(TxError::CostOverflow)?;
    if transfer.nonce < account.nonce {
        return Err(Refusal::NonceUsed { next: account.nonce, got: transfer.nonce });
    }
    if transfer.nonce - account.nonce > max_ahead {
        return Err(Refusal::NonceTooFar { next: account.nonce, got: transfer.nonce, max_ahead });
    }
    // A replacement's predecessor leaves the pool, so its cost no longer counts.
    let mut pending_cost = pending.cost;
    if let Some(taken) = pending.taken {
        let min_fee = taken.replacement_fee();
        if transfer.fee < min_fee {
            return Err(Refusal::NonceTaken { nonce: transfer.nonce, min_fee: Some(min_fee) });
        }
        pending_cost = pending_cost.saturating_sub(taken.cost);
    }
    let covered = pending_cost.checked_add(cost).is_some_and(|total| total <= account.balance);
    if !covered {
        return Err(Refusal::InsufficientFunds { balance: account.balance, pending: pending_cost, cost });
    }
    Ok(cost)
}
