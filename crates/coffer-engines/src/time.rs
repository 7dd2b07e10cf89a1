//! Times and durations printed as OpenBao prints them (Go's `time.RFC3339Nano` in UTC and
//! `time.Duration.String()`), so clients comparing strings see no difference.

use chrono::{DateTime, Utc};

/// Nanoseconds since the Unix epoch, now.
pub(crate) fn now_nanos() -> i64 {
    Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Go's RFC 3339 with nanoseconds, trailing zeros of the fraction dropped, `Z` for UTC:
/// `2026-11-27T18:55:33.54318997Z`.
pub(crate) fn rfc3339_nanos(nanos: i64) -> String {
    let time: DateTime<Utc> = DateTime::from_timestamp_nanos(nanos);
    let mut out = time.format("%Y-%m-%dT%H:%M:%S").to_string();
    let frac = nanos.rem_euclid(1_000_000_000);
    if frac != 0 {
        let digits = format!("{frac:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Go's `time.Duration.String()` for whole seconds: `0s`, `10s`, `1m0s`, `1h30m0s`, `-1s`.
pub(crate) fn go_duration(secs: i64) -> String {
    if secs == 0 {
        return "0s".to_owned();
    }
    let sign = if secs < 0 { "-" } else { "" };
    let abs = secs.unsigned_abs();
    let (h, m, s) = (abs / 3600, (abs / 60) % 60, abs % 60);
    if h > 0 {
        format!("{sign}{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{sign}{m}m{s}s")
    } else {
        format!("{sign}{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_trims_fraction_like_go() {
        assert_eq!(
            rfc3339_nanos(1_795_805_733_543_189_970),
            "2026-11-27T18:55:33.54318997Z"
        );
        assert_eq!(
            rfc3339_nanos(1_795_805_733_000_000_000),
            "2026-11-27T18:55:33Z"
        );
        assert_eq!(
            rfc3339_nanos(1_795_805_733_000_000_001),
            "2026-11-27T18:55:33.000000001Z"
        );
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(10), "10s");
        assert_eq!(go_duration(60), "1m0s");
        assert_eq!(go_duration(5400), "1h30m0s");
        assert_eq!(go_duration(3700), "1h1m40s");
        assert_eq!(go_duration(-1), "-1s");
    }
}
