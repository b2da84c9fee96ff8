//! Login throttling: failures counted per account and per client address, with an exponential
//! lockout, in a map of bounded size (names are chosen by whoever knocks).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per account before the lockout starts.
pub(crate) const ACCOUNT_FREE_FAILURES: u32 = 5;
/// Failures allowed per client address before the lockout starts (many accounts, one source).
pub(crate) const ADDRESS_FREE_FAILURES: u32 = 20;
/// The longest lockout.
const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// A record with no failure for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// Most keys remembered; beyond, forgotten ones and then the oldest are dropped.
const MAX_KEYS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// Failure counts by key (`user:NAME`, `addr:IP`).
#[derive(Debug, Default)]
pub(crate) struct LoginThrottle {
    records: Mutex<HashMap<String, Record>>,
}

impl LoginThrottle {
    /// How long `key` must still wait, if it is locked out.
    pub(crate) fn locked(&self, key: &str) -> Option<Duration> {
        let now = Instant::now();
        let map = self.records.lock().ok()?;
        let until = map.get(key)?.locked_until?;
        (until > now).then(|| until - now)
    }

    /// Counts a failure of `key`; after `free` failures, each further one locks the key out for
    /// twice as long as the last (1 s, 2 s, 4 s... up to 15 minutes).
    pub(crate) fn failed(&self, key: &str, free: u32) {
        let now = Instant::now();
        let Ok(mut map) = self.records.lock() else {
            return;
        };
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            map.retain(|_, r| now.duration_since(r.last) < FORGET_AFTER);
            if map.len() >= MAX_KEYS {
                // Still full: drop the oldest half rather than grow.
                let mut ages: Vec<Instant> = map.values().map(|r| r.last).collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                map.retain(|_, r| r.last > cut);
            }
        }
        let r = map.entry(key.to_owned()).or_insert(Record {
            failures: 0,
            last: now,
            locked_until: None,
        });
        if now.duration_since(r.last) >= FORGET_AFTER {
            r.failures = 0;
        }
        r.failures = r.failures.saturating_add(1);
        r.last = now;
        if r.failures >= free {
            let exp = (r.failures - free).min(20);
            let lock = Duration::from_secs(1u64 << exp).min(MAX_LOCKOUT);
            r.locked_until = Some(now + lock);
        }
    }

    /// A successful login clears the key.
    pub(crate) fn succeeded(&self, key: &str) {
        if let Ok(mut map) = self.records.lock() {
            map.remove(key);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.records.lock().map(|m| m.len()).unwrap_or(0)
    }
}

/// A user-supplied name made safe for one log field: control characters escaped, at most 64
/// characters.
pub(crate) fn log_safe(name: &str) -> String {
    let mut out: String = name.chars().take(64).flat_map(char::escape_debug).collect();
    if name.chars().count() > 64 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_starts_after_the_free_failures_and_success_clears_it() {
        let t = LoginThrottle::default();
        for _ in 0..4 {
            t.failed("user:a", 5);
            assert!(t.locked("user:a").is_none());
        }
        t.failed("user:a", 5);
        assert!(t.locked("user:a").is_some());
        t.succeeded("user:a");
        assert!(t.locked("user:a").is_none());
    }

    #[test]
    fn the_map_stays_bounded() {
        let t = LoginThrottle::default();
        for i in 0..(MAX_KEYS + 500) {
            t.failed(&format!("user:{i}"), 5);
        }
        assert!(t.len() <= MAX_KEYS, "{}", t.len());
    }

    #[test]
    fn names_cannot_forge_log_lines() {
        assert_eq!(log_safe("bob\nINFO forged"), "bob\\nINFO forged");
        assert!(log_safe(&"x".repeat(1000)).chars().count() <= 65);
    }
}
