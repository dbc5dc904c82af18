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
    NonceUsed { next: u64, got: u64 },
    /// The nonce is too far ahead of the sender's next one.
    #[error("nonce {got} is more than {max_ahead} ahead of the sender's next nonce {next}")]
    NonceTooFar { next: u64, got: u64, max_ahead: u64 },
    /// Another pending transfer of the sender already has this nonce.
    #[error("another pending transfer of this sender already has nonce {0}")]
    NonceTaken(u64),
    /// The balance does not cover this transfer on top of the sender's pending ones.
    #[error("balance {balance} does not cover amount + fee = {cost} on top of {pending} pending")]
    InsufficientFunds { balance: u64, pending: u64, cost: u64 },
    /// Already waiting in the mempool.
    #[error("the transfer is already pending")]
    AlreadyPooled,
    /// The mempool is at its bound.
    #[error("the mempool is full")]
    MempoolFull,
}

impl Refusal {
    /// Short label rejections are counted by.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Malformed(e) => e.reason(),
            Refusal::BadSignature => "bad_signature",
            Refusal::NonceUsed { .. } => "nonce_used",
            Refusal::NonceTooFar { .. } => "nonce_too_far",
            Refusal::NonceTaken(_) => "nonce_taken",
            Refusal::InsufficientFunds { .. } => "insufficient_funds",
            Refusal::AlreadyPooled => "duplicate",
            Refusal::MempoolFull => "mempool_full",
        }
    }
}

/// What the pool holds for one sender, as admission needs it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// Whether a pending transfer of the sender already has the nonce asked about.
    pub nonce_taken: bool,
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
    if pending.nonce_taken {
        return Err(Refusal::NonceTaken(transfer.nonce));
    }
    let covered = pending.cost.checked_add(cost).is_some_and(|total| total <= account.balance);
    if !covered {
        return Err(Refusal::InsufficientFunds { balance: account.balance, pending: pending.cost, cost });
    }
    Ok(cost)
}
