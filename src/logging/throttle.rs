//! Bounds how many lines one kind of repeated event writes: a topic full of junk or a broker
//! that keeps failing must not turn the log into the bottleneck or bury everything else. What
//! the lines report is still counted in full elsewhere (`/status`, the metrics); the log only
//! says how many lines it held back.

use crate::sync::lock;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lets at most `burst` lines of one kind through per `window`; the first line let through
/// after a held-back stretch carries how many were held back.
pub struct LogThrottle {
    burst: u32,
    window: Duration,
    state: Mutex<Window>,
}

/// The current window: when it began, lines written in it, lines held back since the last one
/// written.
struct Window {
    started: Option<Instant>,
    written: u32,
    held_back: u64,
}

impl LogThrottle {
    /// A throttle writing at most `burst` lines per `window`.
    pub const fn new(burst: u32, window: Duration) -> Self {
        Self { burst, window, state: Mutex::new(Window { started: None, written: 0, held_back: 0 }) }
    }

    /// Whether to write the line now: `Some(n)` to write it, mentioning the `n` lines held back
    /// before it; `None` to hold it back.
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Option<u64> {
        let mut window = lock(&self.state);
        if window.started.is_none_or(|started| now.duration_since(started) >= self.window) {
            window.started = Some(now);
            window.written = 0;
        }
        if window.written >= self.burst {
            window.held_back += 1;
            return None;
        }
        window.written += 1;
        Some(std::mem::take(&mut window.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_lines_are_held_back_until_the_next_window_which_says_how_many() {
        let throttle = LogThrottle::new(3, Duration::from_secs(10));
        let start = Instant::now();
        let first: Vec<Option<u64>> = (0..5).map(|i| throttle.admit_at(start + Duration::from_millis(i))).collect();
        assert_eq!(first, [Some(0), Some(0), Some(0), None, None]);
        let later = start + Duration::from_secs(10);
        assert_eq!(throttle.admit_at(later), Some(2), "the next window's first line reports the two held back");
        assert_eq!(throttle.admit_at(later), Some(0));
    }

    #[test]
    fn a_quiet_stream_is_never_held_back() {
        let throttle = LogThrottle::new(1, Duration::from_secs(1));
        let start = Instant::now();
        for second in 0..20 {
            assert_eq!(throttle.admit_at(start + Duration::from_secs(second)), Some(0));
        }
    }
}
