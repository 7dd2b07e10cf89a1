//! User lockout after repeated failed logins, as OpenBao's core does for userpass and approle
//! (openbao `vault/request_handling.go`, `failedUserLoginProcess`): after `threshold`
//! failures, each within `counter_reset` of the previous one, the login name is locked for
//! `duration`; while locked every login, even with the right secret, is refused with
//! "permission denied"; a successful login clears the count.
//!
//! OpenBao keeps these counters in core, keyed by mount accessor and alias, and tunes them with
//! `sys/auth/<path>/tune` `user_lockout_config`. Here the counters live in the auth method and
//! the settings are read from the mount's options (`lockout_threshold`, `lockout_duration`,
//! `lockout_counter_reset`, `lockout_disable`), which is where core's tune must put them.
//!
//! The counters are kept in memory: a restart forgets them, as it forgets in-flight attacks.
//! Unlike OpenBao, names that do not exist are counted too, so that a locked account cannot be
//! told from a missing one by its answer.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use coffer_sdk::duration::parse_str;

/// OpenBao's defaults: 5 failures, locked for 15 minutes, counter reset after 15 minutes.
const DEFAULT_THRESHOLD: u64 = 5;
const DEFAULT_DURATION: i64 = 15 * 60;
const DEFAULT_COUNTER_RESET: i64 = 15 * 60;
/// Above this many tracked names, stale entries are pruned on the next failure.
const PRUNE_ABOVE: usize = 10_000;

/// The lockout settings of one mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LockoutConfig {
    pub(crate) threshold: u64,
    /// Seconds a locked name stays locked.
    pub(crate) duration: i64,
    /// Seconds after the last failure when the count starts over.
    pub(crate) counter_reset: i64,
    pub(crate) disabled: bool,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        LockoutConfig {
            threshold: DEFAULT_THRESHOLD,
            duration: DEFAULT_DURATION,
            counter_reset: DEFAULT_COUNTER_RESET,
            disabled: false,
        }
    }
}

impl LockoutConfig {
    /// The settings in a mount's options; missing or unreadable ones take OpenBao's defaults.
    /// A threshold of 0 keeps the default, as OpenBao's tune does.
    pub(crate) fn from_options(options: &BTreeMap<String, String>) -> Self {
        let mut config = LockoutConfig::default();
        let get = |k: &str| {
            options
                .get(k)
                .or_else(|| options.get(&format!("user_{k}")))
                .map(|v| v.trim())
        };
        if let Some(n) = get("lockout_threshold").and_then(|v| v.parse::<u64>().ok()) {
            if n > 0 {
                config.threshold = n;
            }
        }
        let secs = |v: &str| parse_str(v).ok().and_then(|s| i64::try_from(s).ok());
        if let Some(d) = get("lockout_duration").and_then(secs).filter(|d| *d > 0) {
            config.duration = d;
        }
        if let Some(d) = get("lockout_counter_reset")
            .or_else(|| get("lockout_counter_reset_duration"))
            .and_then(secs)
            .filter(|d| *d > 0)
        {
            config.counter_reset = d;
        }
        if let Some(v) = get("lockout_disable") {
            config.disabled = matches!(v, "true" | "1" | "t" | "T" | "TRUE" | "True");
        }
        config
    }
}

/// Failed-login counters of one mount, keyed by login name.
#[derive(Debug, Default)]
pub(crate) struct Lockout {
    entries: Mutex<HashMap<String, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u64,
    /// Seconds since the epoch of the last failure.
    last: i64,
}

impl Lockout {
    /// Whether `name` is locked now; an expired lock is cleared.
    pub(crate) fn is_locked(&self, name: &str, config: &LockoutConfig, now: i64) -> bool {
        if config.disabled {
            return false;
        }
        let mut entries = self.lock();
        let Some(f) = entries.get(name).copied() else {
            return false;
        };
        if f.count < config.threshold {
            return false;
        }
        if now - f.last >= config.duration {
            entries.remove(name);
            return false;
        }
        true
    }

    /// Counts a failed login of `name`; true when this failure locks it.
    pub(crate) fn record_failure(&self, name: &str, config: &LockoutConfig, now: i64) -> bool {
        if config.disabled {
            return false;
        }
        let mut entries = self.lock();
        if entries.len() > PRUNE_ABOVE {
            let stale = config.duration.max(config.counter_reset);
            entries.retain(|_, f| now - f.last < stale);
        }
        let f = entries.entry(name.to_owned()).or_insert(Failures {
            count: 0,
            last: now,
        });
        if now - f.last >= config.counter_reset {
            f.count = 0;
        }
        f.count += 1;
        f.last = now;
        f.count >= config.threshold
    }

    /// A successful login clears the count of `name`.
    pub(crate) fn record_success(&self, name: &str) {
        self.lock().remove(name);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Failures>> {
        // A panic while holding this lock cannot leave a counter half-written: recover it.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_threshold_and_unlocks_after_duration() {
        let l = Lockout::default();
        let c = LockoutConfig::default();
        for i in 0..4 {
            assert!(!l.record_failure("a", &c, 100 + i));
            assert!(!l.is_locked("a", &c, 100 + i));
        }
        assert!(l.record_failure("a", &c, 105));
        assert!(l.is_locked("a", &c, 106));
        assert!(!l.is_locked("b", &c, 106));
        assert!(l.is_locked("a", &c, 105 + 899));
        assert!(!l.is_locked("a", &c, 105 + 900));
        // The count started over.
        assert!(!l.record_failure("a", &c, 1100));
    }

    #[test]
    fn counter_resets_after_quiet_period_and_success() {
        let l = Lockout::default();
        let c = LockoutConfig::default();
        for i in 0..4 {
            l.record_failure("a", &c, i);
        }
        assert!(!l.record_failure("a", &c, 4 + 900));
        for i in 0..4 {
            l.record_failure("b", &c, i);
        }
        l.record_success("b");
        assert!(!l.record_failure("b", &c, 5));
    }

    #[test]
    fn options_tune_and_disable() {
        let mut o = BTreeMap::new();
        o.insert("lockout_threshold".to_owned(), "2".to_owned());
        o.insert("lockout_duration".to_owned(), "10s".to_owned());
        o.insert("lockout_counter_reset".to_owned(), "1m".to_owned());
        let c = LockoutConfig::from_options(&o);
        assert_eq!((c.threshold, c.duration, c.counter_reset), (2, 10, 60));
        o.insert("lockout_disable".to_owned(), "true".to_owned());
        let c = LockoutConfig::from_options(&o);
        let l = Lockout::default();
        for i in 0..10 {
            assert!(!l.record_failure("a", &c, i));
        }
        assert!(!l.is_locked("a", &c, 10));
    }
}
