//! `kafkachain wallet watch`: an account's transfers in and out, a line each as the node's main
//! chain takes them (its `GET /events`), and a line for each one a reorganization takes out
//! again. A dropped stream is opened again with `Last-Event-ID`, so nothing is missed; when the
//! node no longer holds what was missed, the watch says so.

use super::{answer, base, WalletError};
use crate::core::account::Address;
use crate::core::hash::{BlockHash, TxId};
use crate::stream::{Connected, Disconnected};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

/// Blocks whose lines for the account are remembered, to say which are undone when a block
/// leaves the main chain (deeper reorganizations than this are reported by height only).
const REMEMBERED_BLOCKS: usize = 1_000;
/// Wait before opening a dropped stream again.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// Longest event line read, in bytes: a full block's transfers as JSON fit well within.
const MAX_LINE_BYTES: u64 = 64 * 1024 * 1024;

/// One event of the stream: its name, id and data.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Frame {
    pub(super) name: String,
    pub(super) id: Option<String>,
    pub(super) data: String,
}

/// Reads Server-Sent Events frames from `reader`: `None` at the end of the stream.
pub(super) fn next_frame(reader: &mut impl BufRead) -> std::io::Result<Option<Frame>> {
    let (mut name, mut id, mut data) = (String::new(), None, String::new());
    loop {
        let mut line = String::new();
        if std::io::Read::take(&mut *reader, MAX_LINE_BYTES).read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if !name.is_empty() || !data.is_empty() {
                return Ok(Some(Frame { name, id, data }));
            }
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => name = value.to_owned(),
            "id" => id = Some(value.to_owned()),
            "data" => {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value);
            }
            // Comments (heartbeats) and fields this client does not use.
            _ => {}
        }
    }
}

/// The lines printed for one account, and what it remembers to report undone transfers.
pub(super) struct Watcher {
    address: Address,
    printed: VecDeque<(BlockHash, Vec<TxId>)>,
}

impl Watcher {
    /// A watcher of `address`.
    pub(super) fn new(address: Address) -> Self {
        Self { address, printed: VecDeque::new() }
    }

    /// The lines `frame` gives for the account.
    pub(super) fn lines(&mut self, frame: &Frame) -> Vec<String> {
        match frame.name.as_str() {
            "connect" => match serde_json::from_str::<Connected>(&frame.data) {
                Ok(block) => self.connected(&block),
                Err(e) => vec![format!("unreadable connect event: {e}")],
            },
            "disconnect" => match serde_json::from_str::<Disconnected>(&frame.data) {
                Ok(block) => self.disconnected(&block),
                Err(e) => vec![format!("unreadable disconnect event: {e}")],
            },
            "reset" => vec!["the node no longer holds the events missed: compare the balance".to_owned()],
            "halted" => {
                let said: serde_json::Value = serde_json::from_str(&frame.data).unwrap_or_default();
                vec![format!("the node halted: {}", said["message"].as_str().unwrap_or(&frame.data))]
            }
            "resumed" => vec!["the node runs again".to_owned()],
            _ => Vec::new(),
        }
    }

    fn connected(&mut self, block: &Connected) -> Vec<String> {
        let mut lines = Vec::new();
        let mut ids = Vec::new();
        if let Some(reward) = block.reward.as_ref().filter(|r| r.recipient == self.address) {
            lines.push(format!("height {} reward +{} tx {}", block.height, reward.amount, reward.id));
            ids.push(reward.id);
        }
        for tx in &block.transactions {
            if tx.recipient == self.address {
                lines.push(format!("height {} in +{} from {} tx {}", block.height, tx.amount, tx.sender, tx.id));
            }
            if tx.sender == self.address {
                let spent = tx.amount + tx.fee;
                lines.push(format!(
                    "height {} out -{spent} to {} (fee {}) tx {}",
                    block.height, tx.recipient, tx.fee, tx.id
                ));
            }
            if tx.recipient == self.address || tx.sender == self.address {
                ids.push(tx.id);
            }
        }
        if !ids.is_empty() {
            if self.printed.len() == REMEMBERED_BLOCKS {
                self.printed.pop_front();
            }
            self.printed.push_back((block.hash, ids));
        }
        lines
    }

    fn disconnected(&mut self, block: &Disconnected) -> Vec<String> {
        let Some(place) = self.printed.iter().position(|(hash, _)| *hash == block.hash) else { return Vec::new() };
        let (_, ids) = self.printed.remove(place).unwrap_or_default();
        ids.iter()
            .map(|id| format!("height {} undone tx {id} (block {} left the main chain)", block.height, block.hash))
            .collect()
    }
}

/// Prints the account's lines to `out` until the node cannot be reached at all (a stream that
/// ends is opened again after the last event seen).
pub(super) fn watch(node: &str, address: Address, out: &mut impl Write) -> Result<(), WalletError> {
    let http = reqwest::blocking::Client::builder().connect_timeout(super::HTTP_TIMEOUT).build()?;
    let mut watcher = Watcher::new(address);
    let mut last_id: Option<String> = None;
    loop {
        let mut request = http.get(format!("{}/events", base(node)));
        if let Some(id) = &last_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = match request.send() {
            Ok(response) => answer(response)?,
            // Unreachable the first time: the address is wrong, say so; later, the node may be
            // restarting.
            Err(e) if last_id.is_none() => return Err(e.into()),
            Err(_) => {
                std::thread::sleep(RECONNECT_AFTER);
                continue;
            }
        };
        let mut reader = BufReader::new(response);
        while let Ok(Some(frame)) = next_frame(&mut reader) {
            if last_id.is_none() && frame.name == "tip" {
                let tip: serde_json::Value = serde_json::from_str(&frame.data).unwrap_or_default();
                writeln!(out, "watching {address} from height {}", tip["height"])
                    .map_err(|source| WalletError::Io { path: "stdout".into(), source })?;
            }
            if frame.id.is_some() {
                last_id.clone_from(&frame.id);
            }
            for line in watcher.lines(&frame) {
                writeln!(out, "{line}").map_err(|source| WalletError::Io { path: "stdout".into(), source })?;
            }
            out.flush().map_err(|source| WalletError::Io { path: "stdout".into(), source })?;
        }
        std::thread::sleep(RECONNECT_AFTER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{RewardEvent, TransferEvent};

    #[test]
    fn frames_are_read_field_by_field_and_comments_are_skipped() {
        let text = ": heartbeat\n\nevent: tip\nid: 5-1\ndata: {\"height\":1}\n\nevent:reset\ndata:{}\n\n";
        let mut reader = text.as_bytes();
        let first = next_frame(&mut reader).unwrap().unwrap();
        assert_eq!(first, Frame { name: "tip".into(), id: Some("5-1".into()), data: "{\"height\":1}".into() });
        assert_eq!(next_frame(&mut reader).unwrap().unwrap().name, "reset");
        assert_eq!(next_frame(&mut reader).unwrap(), None);
    }

    #[test]
    fn the_account_sees_its_transfers_and_those_a_reorganization_undoes() {
        let (me, other) = (Address::new([1; 32]), Address::new([2; 32]));
        let transfer = |sender, recipient, id: u8| TransferEvent {
            id: TxId::new([id; 32]),
            sender,
            recipient,
            amount: 10,
            fee: 1,
            nonce: 0,
        };
        let block = Connected {
            seq: 0,
            height: 7,
            hash: BlockHash::new([7; 32]),
            prev_hash: BlockHash::new([6; 32]),
            timestamp_ms: 0,
            bits: "1f00ffff".into(),
            reward: Some(RewardEvent { id: TxId::new([9; 32]), recipient: other, amount: 50 }),
            transactions: vec![transfer(other, me, 3), transfer(me, other, 4), transfer(other, other, 5)],
        };
        let mut watcher = Watcher::new(me);
        let frame = Frame { name: "connect".into(), id: None, data: serde_json::to_string(&block).unwrap() };
        let lines = watcher.lines(&frame);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("height 7 in +10 from"), "{lines:?}");
        assert!(lines[1].starts_with("height 7 out -11 to"), "{lines:?}");
        let gone = Disconnected { seq: 1, height: 7, hash: block.hash, prev_hash: block.prev_hash };
        let frame = Frame { name: "disconnect".into(), id: None, data: serde_json::to_string(&gone).unwrap() };
        let undone = watcher.lines(&frame);
        assert_eq!(undone.len(), 2, "{undone:?}");
        assert!(undone.iter().all(|line| line.contains("undone")), "{undone:?}");
    }
}
