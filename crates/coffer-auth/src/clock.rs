//! The time auth methods decide by (lockout windows, secret-id and JWT expiry), injectable so
//! that tests move it instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};

/// Wall-clock time, or a manual clock in tests.
#[derive(Debug, Clone, Default)]
pub(crate) struct Clock {
    /// Seconds since the epoch set by a test; `None` reads the system clock.
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// A clock stopped at `secs` since the epoch, moved with `advance`.
    #[cfg(test)]
    pub(crate) fn manual(secs: i64) -> Self {
        Clock {
            manual: Some(Arc::new(AtomicI64::new(secs))),
        }
    }

    /// Moves a manual clock forward; does nothing to the system clock.
    #[cfg(test)]
    pub(crate) fn advance(&self, secs: i64) {
        if let Some(m) = &self.manual {
            m.fetch_add(secs, Ordering::SeqCst);
        }
    }

    /// Now, to the nanosecond for the system clock.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        match &self.manual {
            Some(m) => DateTime::from_timestamp(m.load(Ordering::SeqCst), 0).unwrap_or_default(),
            None => Utc::now(),
        }
    }

    /// Seconds since the epoch.
    pub(crate) fn now_secs(&self) -> i64 {
        self.now().timestamp()
    }
}

/// Go's RFC 3339 with nanoseconds as OpenBao prints times (`2026-11-27T19:23:36.655972047Z`);
/// the zero time is Go's `0001-01-01T00:00:00Z`.
pub(crate) fn rfc3339(time: Option<DateTime<Utc>>) -> String {
    match time {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        None => "0001-01-01T00:00:00Z".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = Clock::manual(1000);
        assert_eq!(clock.now_secs(), 1000);
        clock.advance(60);
        assert_eq!(clock.now_secs(), 1060);
        assert_eq!(rfc3339(None), "0001-01-01T00:00:00Z");
        assert_eq!(rfc3339(Some(clock.now())), "1970-01-01T00:17:40Z");
    }
}
