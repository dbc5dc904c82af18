//! Merkle root of transaction ids (consensus): pairs hashed as SHA-256(left ++ right), the last
//! node duplicated on odd levels; one id is its own root; no ids give 32 zero bytes.

use super::hash::{sha256, MerkleRoot, TxId};

/// The Merkle root committing to `ids` in order.
pub fn merkle_root(ids: &[TxId]) -> MerkleRoot {
    let mut level: Vec<[u8; 32]> = ids.iter().map(|id| id.0).collect();
    if level.is_empty() {
        return MerkleRoot::ZERO;
    }
    let mut pair = [0u8; 64];
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|two| {
                let right = two.get(1).unwrap_or(&two[0]);
                pair[..32].copy_from_slice(&two[0]);
                pair[32..].copy_from_slice(right);
                sha256(&pair)
            })
            .collect();
    }
    MerkleRoot(level[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> TxId {
        TxId([n; 32])
    }

    fn join(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
        sha256(&[a.as_slice(), b.as_slice()].concat())
    }

    #[test]
    fn small_trees_follow_the_rule() {
        assert_eq!(merkle_root(&[]), MerkleRoot::ZERO);
        assert_eq!(merkle_root(&[id(1)]).0, id(1).0);
        assert_eq!(merkle_root(&[id(1), id(2)]).0, join(&id(1).0, &id(2).0));
        let left = join(&id(1).0, &id(2).0);
        let right = join(&id(3).0, &id(3).0);
        assert_eq!(merkle_root(&[id(1), id(2), id(3)]).0, join(&left, &right));
    }

    #[test]
    fn order_matters() {
        assert_ne!(merkle_root(&[id(1), id(2)]), merkle_root(&[id(2), id(1)]));
    }
}
