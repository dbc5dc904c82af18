//! The wall clock in the unit of block timestamps. What reads it is never consensus (consensus
//! time is the broker's append time, carried by the blocks topic): miner timestamps, apply
//! times, benchmark and test timing.

/// Milliseconds since the Unix epoch (0 before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
