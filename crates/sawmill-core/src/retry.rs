//! The one retry policy of sawmill: how long to wait before trying again after a failure
//! that may pass (a connection error, a 429 or 5xx answer, an S3 or SNS outage).
//!
//! Waits grow exponentially from [`RetryPolicy::initial`] up to [`RetryPolicy::max`], each
//! drawn between half and all of its nominal value (jitter, so that clients that failed
//! together do not retry together). A server's `Retry-After` is a floor: the wait is never
//! shorter than what the server asked for (up to [`RetryPolicy::max_retry_after`], so that a
//! wrong header cannot park a client for hours). The archive, the alert notifiers, the
//! command-line clients and the Lambda forwarder all use [`RetryPolicy::DEFAULT`]; a caller
//! with a deadline (the forwarder's invocation) compares the wait with what time it has left.

use rand::Rng;
use std::time::Duration;

/// How the wait before each retry is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The nominal wait before the first retry.
    pub initial: Duration,
    /// The longest nominal wait, however many attempts failed.
    pub max: Duration,
    /// The longest `Retry-After` honoured.
    pub max_retry_after: Duration,
}

impl RetryPolicy {
    /// 200 ms doubling to 30 s; `Retry-After` honoured up to 5 minutes.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        initial: Duration::from_millis(200),
        max: Duration::from_secs(30),
        max_retry_after: Duration::from_secs(300),
    };

    /// The same policy with another longest wait (at least `initial`).
    pub fn with_max(self, max: Duration) -> RetryPolicy {
        RetryPolicy {
            max: max.max(self.initial),
            ..self
        }
    }

    /// The nominal wait after `failures` failed attempts (1 for the first): `initial ·
    /// 2^(failures-1)`, at most `max`.
    pub fn nominal(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.initial.saturating_mul(1u32 << doublings).min(self.max)
    }

    /// The wait after `failures` failed attempts: between half and all of [`Self::nominal`],
    /// and never less than the server's `Retry-After` (capped at `max_retry_after`).
    pub fn delay(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let nominal = self.nominal(failures);
        let nanos = nominal.as_nanos().min(u128::from(u64::MAX)) as u64;
        let jittered = Duration::from_nanos(rand::thread_rng().gen_range(nanos / 2..=nanos));
        match retry_after {
            Some(after) => jittered.max(after.min(self.max_retry_after)),
            None => jittered,
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::DEFAULT
    }
}

/// A `Retry-After` header value in delay-seconds (the form sawmill and AWS send); `None` for
/// anything else, including HTTP dates.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_from_the_initial_wait_up_to_the_longest() {
        let p = RetryPolicy::DEFAULT;
        assert_eq!(p.nominal(1), Duration::from_millis(200));
        assert_eq!(p.nominal(2), Duration::from_millis(400));
        assert_eq!(p.nominal(8), Duration::from_millis(25_600));
        assert_eq!(p.nominal(9), Duration::from_secs(30));
        assert_eq!(p.nominal(u32::MAX), Duration::from_secs(30));
        assert_eq!(p.nominal(0), Duration::from_millis(200));
    }

    #[test]
    fn each_wait_is_between_half_and_all_of_its_nominal_value() {
        let p = RetryPolicy::DEFAULT;
        for failures in 1..40 {
            let nominal = p.nominal(failures);
            for _ in 0..20 {
                let d = p.delay(failures, None);
                assert!(d >= nominal / 2 && d <= nominal, "{failures}: {d:?}");
            }
        }
    }

    #[test]
    fn retry_after_is_a_floor_within_its_cap() {
        let p = RetryPolicy::DEFAULT;
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(86_400))),
            Duration::from_secs(300)
        );
        // a short Retry-After does not shorten a long backoff
        let d = p.delay(20, Some(Duration::from_secs(1)));
        assert!(d >= Duration::from_secs(15), "{d:?}");
    }

    #[test]
    fn a_lower_maximum_caps_every_wait() {
        let p = RetryPolicy::DEFAULT.with_max(Duration::from_secs(1));
        assert!(p.delay(50, None) <= Duration::from_secs(1));
        let tiny = RetryPolicy::DEFAULT.with_max(Duration::ZERO);
        assert_eq!(tiny.max, tiny.initial);
    }

    #[test]
    fn retry_after_headers_in_seconds_are_read() {
        assert_eq!(parse_retry_after(" 30 "), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }
}
