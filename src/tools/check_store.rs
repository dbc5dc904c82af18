//! `check-store`: a data directory's consistency (tip, main-chain index, transaction index,
//! mempool) and its stored offsets, for operators after a crash and for the crash tests, which
//! read the JSON form.

use crate::store::{Consistency, Positions, Store, StoreError, DEFAULT_CACHE_BYTES};
use std::path::{Path, PathBuf};

/// Why the check could not run (the problems it finds are its report, not errors).
#[derive(Debug, thiserror::Error)]
pub enum CheckStoreError {
    /// The data directory holds no store, or it could not be opened.
    #[error("opening {}: {source}", path.display())]
    Open {
        /// The data directory.
        path: PathBuf,
        /// What the store reported.
        source: StoreError,
    },
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks the store in `data_dir` and prints what was found (one JSON line if `json`); returns
/// whether it is consistent.
pub fn command(data_dir: &Path, json: bool) -> Result<bool, CheckStoreError> {
    let store = Store::open_existing(data_dir, DEFAULT_CACHE_BYTES)
        .map_err(|source| CheckStoreError::Open { path: data_dir.to_owned(), source })?;
    let report = store.check_consistency()?;
    let offsets = store.offsets()?;
    println!("{}", if json { json_line(&report, &offsets) } else { text(&report, &offsets) });
    Ok(report.problems.is_empty())
}

/// The report as one JSON object, offsets included.
fn json_line(report: &Consistency, offsets: &Positions) -> String {
    serde_json::json!({
        "tip_height": report.tip_height,
        "main_len": report.main_len,
        "stored_blocks": report.stored_blocks,
        "mempool_len": report.mempool_len,
        "confirmed_transfers": report.confirmed_transfers,
        "offsets": offsets,
        "problems": report.problems,
    })
    .to_string()
}

/// The report for people: the tip and mempool, a line per offset, a line per problem.
fn text(report: &Consistency, offsets: &Positions) -> String {
    let mut lines = vec![format!("tip height {}, mempool {}", report.tip_height, report.mempool_len)];
    lines.extend(offsets.iter().map(|(position, next)| format!("offset {position}: next {next}")));
    lines.extend(report.problems.iter().map(|problem| format!("PROBLEM: {problem}")));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TopicPartition;

    #[test]
    fn the_report_prints_as_text_or_as_one_json_line() {
        let report = Consistency {
            tip_height: 7,
            main_len: 8,
            stored_blocks: 9,
            mempool_len: 2,
            confirmed_transfers: 5,
            problems: vec!["tip block x is missing".into()],
        };
        let position = TopicPartition::new("blocks", 0);
        let offsets = Positions::from([(position.clone(), 8)]);
        assert_eq!(
            text(&report, &offsets),
            format!("tip height 7, mempool 2\noffset {position}: next 8\nPROBLEM: tip block x is missing")
        );
        let line: serde_json::Value = serde_json::from_str(&json_line(&report, &offsets)).unwrap();
        assert_eq!(line["tip_height"], 7);
        assert_eq!(line["stored_blocks"], 9);
        assert_eq!(line["problems"][0], "tip block x is missing");
        assert_eq!(line["offsets"].as_object().map(|o| o.len()), Some(1));
    }
}
