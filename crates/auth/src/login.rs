//! Throttling of failed logins, per user and per source address: Keystone password
//! authentication and the admin API's HTTP Basic both consult one [`LoginThrottle`].
//!
//! Each user name (or access key ID) and each source address keeps the times of its recent
//! failures (at most the limit's worth, so memory per key is bounded). A key with `limit`
//! failures inside the window is refused — without looking at the password — until the oldest
//! of them leaves the window; the caller answers 429 with that wait as `Retry-After`. A
//! successful login clears the user's record (not the source's). At most [`MAX_TRACKED`] keys
//! are tracked per kind: when full, keys whose failures all left the window are swept, and if
//! none did, the new key goes untracked (its source is still counted).

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub use crate::ratelimit::RetryAfter;

/// Failed logins a user may have inside the window.
pub const USER_FAILURES: usize = 5;
/// Failed logins one source address may have inside the window (several users may share an
/// address behind NAT or a CI host, hence higher than the per-user limit).
pub const SOURCE_FAILURES: usize = 20;
/// The window (seconds).
pub const WINDOW_SECS: u64 = 60;
/// Keys tracked per kind (users, sources).
pub const MAX_TRACKED: usize = 100_000;
/// User keys longer than this are tracked by their SHA-256 (attacker-chosen names must not
/// make the table large).
const MAX_KEY_LEN: usize = 64;

fn user_key(user: &str) -> Cow<'_, str> {
    if user.len() <= MAX_KEY_LEN {
        Cow::Borrowed(user)
    } else {
        Cow::Owned(format!("sha256:{}", hex::encode(Sha256::digest(user.as_bytes()))))
    }
}

#[derive(Debug)]
struct Log {
    limit: usize,
    entries: HashMap<String, VecDeque<Instant>>,
}

impl Log {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            entries: HashMap::new(),
        }
    }

    fn blocked(&self, key: &str, window: Duration, now: Instant) -> Option<Duration> {
        let times = self.entries.get(key)?;
        if times.len() < self.limit {
            return None;
        }
        let oldest = *times.front()?;
        let free_at = oldest + window;
        (free_at > now).then(|| free_at - now)
    }

    fn fail(&mut self, key: &str, window: Duration, now: Instant) {
        if !self.entries.contains_key(key) && self.entries.len() >= MAX_TRACKED {
            self.entries
                .retain(|_, t| t.back().is_some_and(|last| *last + window > now));
            if self.entries.len() >= MAX_TRACKED {
                return;
            }
        }
        let times = self.entries.entry(key.to_string()).or_default();
        while times.front().is_some_and(|t| *t + window <= now) {
            times.pop_front();
        }
        if times.len() >= self.limit {
            times.pop_front();
        }
        times.push_back(now);
    }
}

#[derive(Debug)]
pub struct LoginThrottle {
    window: Duration,
    users: Mutex<Log>,
    sources: Mutex<Log>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(
            USER_FAILURES,
            SOURCE_FAILURES,
            Duration::from_secs(WINDOW_SECS),
        )
    }
}

impl LoginThrottle {
    pub fn new(per_user: usize, per_source: usize, window: Duration) -> Self {
        Self {
            window,
            users: Mutex::new(Log::new(per_user.max(1))),
            sources: Mutex::new(Log::new(per_source.max(1))),
        }
    }

    /// May `user` from `source` try a password now? Err carries how long to wait.
    pub fn check(&self, user: &str, source: Option<IpAddr>) -> Result<(), RetryAfter> {
        self.check_at(user, source, Instant::now())
    }

    pub fn check_at(
        &self,
        user: &str,
        source: Option<IpAddr>,
        now: Instant,
    ) -> Result<(), RetryAfter> {
        let by_user = self.users.lock().blocked(&user_key(user), self.window, now);
        let by_source = source.and_then(|ip| {
            self.sources
                .lock()
                .blocked(&ip.to_string(), self.window, now)
        });
        match by_user.into_iter().chain(by_source).max() {
            // Round up: a client waiting the whole seconds of Retry-After is then admitted.
            Some(wait) => Err(RetryAfter(Duration::from_secs(
                wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            ))),
            None => Ok(()),
        }
    }

    /// Record a failed login of `user` from `source`.
    pub fn fail(&self, user: &str, source: Option<IpAddr>) {
        self.fail_at(user, source, Instant::now())
    }

    pub fn fail_at(&self, user: &str, source: Option<IpAddr>, now: Instant) {
        self.users.lock().fail(&user_key(user), self.window, now);
        if let Some(ip) = source {
            self.sources.lock().fail(&ip.to_string(), self.window, now);
        }
    }

    /// A successful login clears the user's failures.
    pub fn succeed(&self, user: &str) {
        self.users.lock().entries.remove(user_key(user).as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn user_blocked_after_limit_until_window_passes() {
        let t = LoginThrottle::new(3, 100, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(t.check_at("alice", ip("10.0.0.1"), t0).is_ok(), "{i}");
            t.fail_at("alice", ip("10.0.0.1"), t0 + Duration::from_secs(i));
        }
        let wait = t
            .check_at("alice", ip("10.0.0.9"), t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(wait.0, Duration::from_secs(50));
        // Other users are not affected.
        assert!(t.check_at("bob", ip("10.0.0.1"), t0).is_ok());
        // The oldest failure leaves the window: one more try.
        assert!(
            t.check_at("alice", None, t0 + Duration::from_secs(60))
                .is_ok()
        );
    }

    #[test]
    fn source_blocked_across_users() {
        let t = LoginThrottle::new(100, 4, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..4 {
            t.fail_at(&format!("user{i}"), ip("192.0.2.7"), t0);
        }
        assert!(t.check_at("fresh", ip("192.0.2.7"), t0).is_err());
        assert!(t.check_at("fresh", ip("192.0.2.8"), t0).is_ok());
        assert!(t.check_at("fresh", None, t0).is_ok());
    }

    #[test]
    fn success_clears_the_user() {
        let t = LoginThrottle::new(2, 100, Duration::from_secs(60));
        let t0 = Instant::now();
        t.fail_at("alice", None, t0);
        t.succeed("alice");
        t.fail_at("alice", None, t0);
        assert!(t.check_at("alice", None, t0).is_ok());
        t.fail_at("alice", None, t0);
        assert!(t.check_at("alice", None, t0).is_err());
    }

    #[test]
    fn long_names_are_tracked_by_digest() {
        let t = LoginThrottle::new(2, 100, Duration::from_secs(60));
        let t0 = Instant::now();
        let long = "n".repeat(1 << 20);
        t.fail_at(&long, None, t0);
        t.fail_at(&long, None, t0);
        assert!(t.check_at(&long, None, t0).is_err());
        let users = t.users.lock();
        assert!(users.entries.keys().all(|k| k.len() <= 71), "stored a long key");
    }

    #[test]
    fn memory_per_key_is_bounded() {
        let t = LoginThrottle::new(3, 3, Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..1000 {
            t.fail_at("alice", ip("10.0.0.1"), t0 + Duration::from_millis(i));
        }
        assert_eq!(t.users.lock().entries["alice"].len(), 3);
        assert_eq!(t.sources.lock().entries["10.0.0.1"].len(), 3);
    }
}
