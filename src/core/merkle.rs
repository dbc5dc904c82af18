//! Merkle root of transaction ids (consensus): pairs hashed as SHA-256(left ++ right), the last
//! node duplicated on odd levels; one id is its own root; no ids give 32 zero bytes.

use super::hash::{sha256, MerkleRoot, TxId};

/// The Merkle root committing to `ids` in order.
pub fn merkle_root(ids: &[TxId]) -> MerkleRoot {
    let mut level: Vec<[u8; 32]> = ids.iter().map(|id| *id.as_bytes()).collect();
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
    MerkleRoot::new(level[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> TxId {
        TxId::new([n; 32])
    }

    fn join(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
        sha256(&[a.as_slice(), b.as_slice()].concat())
    }

    #[test]
    fn small_trees_follow_the_rule() {
        assert_eq!(merkle_root(&[]), MerkleRoot::ZERO);
        assert_eq!(*merkle_root(&[id(1)]).as_bytes(), *id(1).as_bytes());
        assert_eq!(*merkle_root(&[id(1), id(2)]).as_bytes(), join(id(1).as_bytes(), id(2).as_bytes()));
        let left = join(id(1).as_bytes(), id(2).as_bytes());
        let right = join(id(3).as_bytes(), id(3).as_bytes());
        assert_eq!(*merkle_root(&[id(1), id(2), id(3)]).as_bytes(), join(&left, &right));
    }

    #[test]
    fn order_matters() {
        assert_ne!(merkle_root(&[id(1), id(2)]), merkle_root(&[id(2), id(1)]));
    }
}
