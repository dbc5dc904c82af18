//! A bound per client address on the transfers it submits over HTTP (`POST /transactions/new`
//! and `/transactions/batch`): each costs a signature verification before it is refused or
//! published, so one client may not spend more of the node's verification time than its share.
//! A client over its allowance is answered 429 with `Retry-After`.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// Client addresses tracked before those idle long enough to be back at a full allowance are
/// forgotten: bounds the limiter's memory whoever connects.
const MAX_TRACKED_CLIENTS: usize = 65_536;

/// Transfers per second each client address may submit, with a burst.
pub struct SubmitRate {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl SubmitRate {
    /// `per_sec` transfers a second per client, up to `burst` at once (at least one batch).
    pub fn new(per_sec: NonZeroU32, burst: NonZeroU32) -> Self {
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_second(per_sec).allow_burst(burst)),
            clock: DefaultClock::default(),
        }
    }

    /// Takes `transfers` from `client`'s allowance, or says how long until it has that many.
    pub fn take(&self, client: IpAddr, transfers: usize) -> Result<(), Duration> {
        if self.limiter.len() > MAX_TRACKED_CLIENTS {
            self.limiter.retain_recent();
        }
        let Some(n) = u32::try_from(transfers).ok().and_then(NonZeroU32::new) else { return Ok(()) };
        match self.limiter.check_key_n(&client, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.wait_time_from(self.clock.now())),
            // More than the burst at once can never pass; the configuration makes the burst at
            // least one whole batch, so this is a client asking beyond what any request holds.
            Err(_) => Err(Duration::from_secs(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_burst_then_waits_and_others_are_not_held_back() {
        let rate = SubmitRate::new(NonZeroU32::new(10).unwrap(), NonZeroU32::new(100).unwrap());
        let (one, other): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert_eq!(rate.take(one, 60), Ok(()));
        assert_eq!(rate.take(one, 40), Ok(()));
        let wait = rate.take(one, 5).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(500), "{wait:?}");
        assert_eq!(rate.take(other, 100), Ok(()), "another address has its own allowance");
    }
}
