//! Balances and nonces (consensus): what a block's transactions do to the accounts of its branch.
//! Pure functions over the accounts a block touches, read beforehand; the same rules admit
//! transfers to the mempool and fill a miner's candidate, so a node never pools or mines what a
//! block may not hold.

use super::account::{Account, AccountEntry, Address};
use super::block::Block;
use super::transaction::{Transaction, Transfer};
use std::collections::HashMap;

/// Why a transfer cannot be applied to its sender's and recipient's accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SpendError {
    /// The nonce is not the sender's next one.
    #[error("nonce {got} is not the sender's next nonce {expected}")]
    Nonce {
        /// The sender's next nonce.
        expected: u64,
        /// The transfer's nonce.
        got: u64,
    },
    /// The sender's balance does not cover amount plus fee.
    #[error("balance {balance} does not cover amount + fee = {cost}")]
    Funds {
        /// The sender's balance.
        balance: u64,
        /// Amount plus fee.
        cost: u64,
    },
    /// `amount + fee` does not fit in 64 bits.
    #[error("amount + fee overflows a 64-bit integer")]
    CostOverflow,
    /// A credit would push a balance past 64 bits.
    #[error("the credit would overflow the recipient's balance")]
    BalanceOverflow,
}

impl SpendError {
    /// Short label rejections are counted by.
    pub fn reason(&self) -> &'static str {
        match self {
            SpendError::Nonce { .. } => "bad_nonce",
            SpendError::Funds { .. } => "insufficient_funds",
            SpendError::CostOverflow => "amount_overflow",
            SpendError::BalanceOverflow => "balance_overflow",
        }
    }
}

/// Why a block's reward or transfers do not fit its branch's accounts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// Transfer `index` (in the block's list, reward at 0) cannot be applied.
    #[error("transaction {index}: {source}")]
    Spend {
        /// The transaction's place in the block.
        index: usize,
        /// The rule it breaks.
        source: SpendError,
    },
    /// The reward is not the subsidy plus the block's fees, or those overflow.
    #[error("the reward is not the subsidy plus the block's fees")]
    RewardAmount,
}

/// The accounts a block touched, before and after it: `before` is the block's undo record
/// (restoring it disconnects the block), `after` what connecting it writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockEffect {
    /// Each touched address with its entry before the block, in first-touch order.
    pub before: Vec<(Address, AccountEntry)>,
    /// Each touched address with its account after the block, in the same order.
    pub after: Vec<(Address, Account)>,
}

/// Every address `block` reads or writes, in first-touch order without repeats: what
/// [`connect`] needs to be given.
pub fn touched(block: &Block) -> Vec<Address> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for tx in &block.transactions {
        let parties = match tx {
            Transaction::Reward(reward) => [Some(reward.recipient), None],
            Transaction::Transfer(t) => [Some(t.sender), Some(t.recipient)],
        };
        for address in parties.into_iter().flatten() {
            if seen.insert(address) {
                out.push(address);
            }
        }
    }
    out
}

/// Applies `block`'s transfers in order and then its reward to `before` (the entries of every
/// address in [`touched`]); checks that the reward is `subsidy` plus the fees. Assumes the block
/// passed `validate::check_block` (reward first, transfers after).
pub fn connect(block: &Block, subsidy: u64, before: Vec<(Address, AccountEntry)>) -> Result<BlockEffect, LedgerError> {
    let mut state: HashMap<Address, AccountEntry> = before.iter().copied().collect();
    let mut fees: u64 = 0;
    let mut reward = None;
    for (index, tx) in block.transactions.iter().enumerate() {
        match tx {
            Transaction::Reward(r) => reward = Some(r),
            Transaction::Transfer(t) => {
                spend(&mut state, t).map_err(|source| LedgerError::Spend { index, source })?;
                fees = fees.checked_add(t.fee).ok_or(LedgerError::RewardAmount)?;
            }
        }
    }
    if let Some(reward) = reward {
        if subsidy.checked_add(fees) != Some(reward.amount) {
            return Err(LedgerError::RewardAmount);
        }
        credit(&mut state, reward.recipient, reward.amount)
            .map_err(|source| LedgerError::Spend { index: 0, source })?;
    }
    let after = before.iter().map(|(address, _)| (*address, state[address].unwrap_or_default())).collect();
    Ok(BlockEffect { before, after })
}

/// Applies one transfer to `state`, which must hold its sender and recipient: the sender pays
/// amount plus fee and moves to its next nonce, the recipient receives the amount (the fee goes
/// to the reward).
pub fn spend(state: &mut HashMap<Address, AccountEntry>, transfer: &Transfer) -> Result<(), SpendError> {
    let cost = transfer.cost().ok_or(SpendError::CostOverflow)?;
    let sender = state.get(&transfer.sender).copied().flatten().unwrap_or_default();
    if transfer.nonce != sender.nonce {
        return Err(SpendError::Nonce { expected: sender.nonce, got: transfer.nonce });
    }
    let Some(balance) = sender.balance.checked_sub(cost) else {
        return Err(SpendError::Funds { balance: sender.balance, cost });
    };
    let recipient = state.get(&transfer.recipient).copied().flatten().unwrap_or_default();
    recipient.balance.checked_add(transfer.amount).ok_or(SpendError::BalanceOverflow)?;
    state.insert(transfer.sender, Some(Account { balance, nonce: sender.nonce + 1 }));
    credit(state, transfer.recipient, transfer.amount)
}

/// Who a miner's block pays and how much the block creates: its reward is `subsidy` plus the
/// fees of the transfers it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payout {
    /// The miner's address.
    pub miner: Address,
    /// The block subsidy.
    pub subsidy: u64,
}

/// A miner's choice of transfers and the reward they add up to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filled {
    /// The transfers, in block order.
    pub transfers: Vec<Transfer>,
    /// Subsidy plus their fees: what the reward must pay.
    pub reward: u64,
}

/// The transfers of `pool` (in the order the mempool ranks them) a block on the tip can hold, at most `max` of
/// them: each sender's in nonce order from its next nonce, each covered by the balance it has
/// by then, and none whose fee would push the reward, or the miner's balance once paid, past 64
/// bits ([`connect`] refuses such a block). A transfer that arrived before the one filling its
/// nonce gap waits for it; one that does not fit is left for a later block. `state` holds the
/// tip's entry of every sender and recipient in `pool` and of the miner.
pub fn fill_block(
    pool: Vec<Transfer>,
    mut state: HashMap<Address, AccountEntry>,
    max: usize,
    payout: Payout,
) -> Filled {
    let mut filled = Filled { transfers: Vec::new(), reward: payout.subsidy };
    let mut waiting: HashMap<Address, std::collections::BTreeMap<u64, Transfer>> = HashMap::new();
    for tx in pool {
        if filled.transfers.len() >= max {
            break;
        }
        let sender = tx.sender;
        let next = state.get(&sender).copied().flatten().unwrap_or_default().nonce;
        if tx.nonce > next {
            waiting.entry(sender).or_default().insert(tx.nonce, tx);
            continue;
        }
        if !take(&mut state, &mut filled, tx, payout.miner) {
            continue;
        }
        // The gap this one filled may release transfers that arrived before it.
        while filled.transfers.len() < max {
            let next = state.get(&sender).copied().flatten().unwrap_or_default().nonce;
            let Some(tx) = waiting.get_mut(&sender).and_then(|w| w.remove(&next)) else { break };
            if !take(&mut state, &mut filled, tx, payout.miner) {
                break;
            }
        }
    }
    filled
}

/// Adds `tx` to `filled` if it can be applied to `state` and its fee still lets the reward be
/// paid to `miner`; otherwise leaves both as they were.
fn take(state: &mut HashMap<Address, AccountEntry>, filled: &mut Filled, tx: Transfer, miner: Address) -> bool {
    let Some(reward) = filled.reward.checked_add(tx.fee) else { return false };
    let saved = [tx.sender, tx.recipient].map(|address| (address, state.get(&address).copied()));
    let payable = spend(state, &tx).is_ok()
        && state.get(&miner).copied().flatten().unwrap_or_default().balance.checked_add(reward).is_some();
    if !payable {
        for (address, entry) in saved {
            match entry {
                Some(entry) => state.insert(address, entry),
                None => state.remove(&address),
            };
        }
        return false;
    }
    filled.reward = reward;
    filled.transfers.push(tx);
    true
}

fn credit(state: &mut HashMap<Address, AccountEntry>, to: Address, amount: u64) -> Result<(), SpendError> {
    let account = state.get(&to).copied().flatten().unwrap_or_default();
    let balance = account.balance.checked_add(amount).ok_or(SpendError::BalanceOverflow)?;
    state.insert(to, Some(Account { balance, ..account }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hash::BlockHash;
    use crate::core::signature::Signature;

    fn addr(n: u8) -> Address {
        Address::new([n; 32])
    }

    fn transfer(from: u8, to: u8, amount: u64, fee: u64, nonce: u64) -> Transaction {
        Transaction::Transfer(Transfer {
            sender: addr(from),
            recipient: addr(to),
            amount,
            fee,
            nonce,
            signature: Signature([0; 64]),
        })
    }

    fn block(reward: u64, transfers: Vec<Transaction>) -> Block {
        let mut txs = vec![Transaction::reward(addr(9), reward, 1)];
        txs.extend(transfers);
        Block::candidate(crate::core::transaction::ChainTag::of("t"), BlockHash::ZERO, 0, 0, 0, txs)
    }

    fn funded(block: &Block, balance: u64) -> Vec<(Address, AccountEntry)> {
        touched(block).into_iter().map(|a| (a, (a == addr(1)).then_some(Account { balance, nonce: 0 }))).collect()
    }

    #[test]
    fn transfers_move_funds_and_nonces_and_fees_reach_the_miner() {
        let b = block(50 + 3, vec![transfer(1, 2, 10, 1, 0), transfer(2, 3, 4, 2, 0)]);
        let effect = connect(&b, 50, funded(&b, 100)).unwrap();
        let after: HashMap<_, _> = effect.after.into_iter().collect();
        assert_eq!(after[&addr(1)], Account { balance: 89, nonce: 1 });
        assert_eq!(after[&addr(2)], Account { balance: 4, nonce: 1 });
        assert_eq!(after[&addr(3)], Account { balance: 4, nonce: 0 });
        assert_eq!(after[&addr(9)], Account { balance: 53, nonce: 0 });
        assert_eq!(effect.before[1], (addr(1), Some(Account { balance: 100, nonce: 0 })));
    }

    fn plain(t: Transaction) -> Transfer {
        t.as_transfer().cloned().unwrap()
    }

    #[test]
    fn a_filled_block_takes_nonces_in_order_and_skips_what_does_not_fit() {
        let pool = vec![
            plain(transfer(1, 2, 10, 0, 1)), // waits for nonce 0
            plain(transfer(3, 2, 10, 0, 0)), // unfunded
            plain(transfer(1, 2, 10, 0, 0)),
            plain(transfer(1, 2, 500, 0, 2)), // more than is left
            plain(transfer(1, 2, 10, 0, 5)),  // a gap that never fills
        ];
        let state = [addr(1), addr(2), addr(3)]
            .into_iter()
            .map(|a| (a, (a == addr(1)).then_some(Account { balance: 100, nonce: 0 })))
            .collect();
        let chosen = fill_block(pool, state, 10, Payout { miner: addr(9), subsidy: 50 }).transfers;
        let nonces: Vec<(u8, u64)> = chosen.iter().map(|t| (t.sender.as_bytes()[0], t.nonce)).collect();
        assert_eq!(nonces, vec![(1, 0), (1, 1)]);
        let b = block(50, chosen.into_iter().map(Transaction::Transfer).collect());
        assert!(connect(&b, 50, funded(&b, 100)).is_ok(), "what the miner picks is what a block may hold");
    }

    #[test]
    fn a_filled_block_leaves_out_fees_the_reward_cannot_pay() {
        let rich = |a: u8, balance| (addr(a), Some(Account { balance, nonce: 0 }));
        let state: HashMap<_, _> = [rich(1, u64::MAX), rich(2, 0), rich(3, 1_000), rich(9, 0)].into_iter().collect();
        let pool = vec![
            plain(transfer(1, 2, 1, u64::MAX - 60, 0)),
            plain(transfer(3, 2, 1, 20, 0)), // subsidy + both fees would pass 64 bits
            plain(transfer(1, 2, 1, 5, 1)),
        ];
        let filled = fill_block(pool, state.clone(), 10, Payout { miner: addr(9), subsidy: 50 });
        let fees: Vec<u64> = filled.transfers.iter().map(|t| t.fee).collect();
        assert_eq!(fees, vec![u64::MAX - 60, 5]);
        assert_eq!(filled.reward, u64::MAX - 5);
        let b = block(filled.reward, filled.transfers.into_iter().map(Transaction::Transfer).collect());
        let before = touched(&b).into_iter().map(|a| (a, state.get(&a).copied().flatten())).collect();
        assert!(connect(&b, 50, before).is_ok(), "the reward the miner computed is the one the rules ask");

        let broke_miner: HashMap<_, _> = [rich(3, 1_000), rich(2, 0), rich(9, u64::MAX - 60)].into_iter().collect();
        let pool = vec![plain(transfer(3, 2, 1, 20, 0))];
        let filled = fill_block(pool, broke_miner, 10, Payout { miner: addr(9), subsidy: 50 });
        assert_eq!(filled, Filled { transfers: vec![], reward: 50 }, "the miner's own balance would overflow");
    }

    #[test]
    fn each_broken_rule_names_the_transaction() {
        let spend_error = |b: &Block, balance| match connect(b, 50, funded(b, balance)) {
            Err(LedgerError::Spend { index, source }) => Some((index, source)),
            _ => None,
        };
        let b = block(50, vec![transfer(1, 2, 10, 0, 0), transfer(1, 2, 10, 0, 0)]);
        assert_eq!(spend_error(&b, 100), Some((2, SpendError::Nonce { expected: 1, got: 0 })));
        let b = block(50, vec![transfer(1, 2, 10, 0, 1)]);
        assert_eq!(spend_error(&b, 100), Some((1, SpendError::Nonce { expected: 0, got: 1 })));
        let b = block(51, vec![transfer(1, 2, 100, 1, 0)]);
        assert_eq!(spend_error(&b, 100), Some((1, SpendError::Funds { balance: 100, cost: 101 })));
        let b = block(50, vec![transfer(1, 2, u64::MAX, 1, 0)]);
        assert_eq!(spend_error(&b, u64::MAX), Some((1, SpendError::CostOverflow)));
        let b = block(50, vec![transfer(1, 2, 10, 0, 0)]);
        assert_eq!(connect(&b, 49, funded(&b, 100)), Err(LedgerError::RewardAmount));
        let b = block(50 + 2, vec![transfer(1, 2, 10, u64::MAX, 0), transfer(1, 2, 1, 3, 1)]);
        assert!(connect(&b, 50, funded(&b, u64::MAX)).is_err(), "fees summing past 64 bits");
    }
}
