//! A lease as stored (one barrier entry per lease), and the TTL arithmetic OpenBao applies when a
//! lease is issued or renewed (`framework.CalculateTTL`).

use std::time::SystemTime;

use chrono::{DateTime, Duration, Utc};
use coffer_sdk::{Error, Lease};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// One lease, under `sys/expire/id/<lease id>`. It keeps the mount's internal data (what the
/// mount needs to revoke the secret) but never the secret itself: OpenBao stores the whole
/// response data with the lease, coffer has no use for it.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct LeaseEntry {
    pub(crate) lease_id: String,
    /// The request path that created it, e.g. `pki/issue/web`.
    pub(crate) path: String,
    /// The mount that issued it: a lease is only ever handed back to that mount, never to
    /// another one mounted at the same path later.
    pub(crate) mount_uuid: String,
    pub(crate) mount_accessor: String,
    /// The token store's hash of the token that created it; revoking that token revokes it.
    pub(crate) token_hash: String,
    #[serde(default)]
    pub(crate) internal_data: Map<String, Value>,
    pub(crate) renewable: bool,
    /// Seconds; the mount's own cap on the lease's whole life (0 = the mount's max TTL).
    pub(crate) max_ttl: u64,
    pub(crate) issue_time: DateTime<Utc>,
    pub(crate) expire_time: DateTime<Utc>,
    pub(crate) last_renewal: Option<DateTime<Utc>>,
    /// When the revoker takes it up: the expire time, or the next retry after a failure.
    pub(crate) due: DateTime<Utc>,
    /// Failed revocation attempts since it fell due.
    pub(crate) attempts: u32,
    /// Why revocation failed for good. Set means irrevocable: no longer retried, shown by
    /// lookup, removed only by an explicit revoke or `revoke-force`.
    pub(crate) revoke_error: Option<String>,
}

impl LeaseEntry {
    pub(crate) fn is_irrevocable(&self) -> bool {
        self.revoke_error.is_some()
    }

    /// The lease as the issuing mount gets it back on renew and revoke.
    pub(crate) fn to_lease(&self, increment: u64) -> Lease {
        Lease {
            lease_id: self.lease_id.clone(),
            ttl: remaining(self.expire_time, Utc::now()),
            renewable: self.renewable,
            max_ttl: self.max_ttl,
            internal_data: self.internal_data.clone(),
            issue_time: Some(SystemTime::from(self.issue_time)),
            expire_time: Some(SystemTime::from(self.expire_time)),
            increment,
        }
    }

    /// Whether the lease may be renewed now, with OpenBao's reasons when not
    /// (`leaseEntry.renewable`).
    pub(crate) fn check_renewable(&self, now: DateTime<Utc>) -> Result<(), Error> {
        if self.is_irrevocable() {
            return Err(Error::invalid(
                "lease is expired and has failed previous revocation attempts",
            ));
        }
        if self.expire_time < now {
            return Err(Error::invalid("lease expired"));
        }
        if !self.renewable {
            return Err(Error::invalid("lease is not renewable"));
        }
        Ok(())
    }

    /// The `data` of `sys/leases/lookup`, with OpenBao's fields.
    pub(crate) fn lookup_data(&self, now: DateTime<Utc>) -> Map<String, Value> {
        let mut data = Map::new();
        data.insert("id".into(), json!(self.lease_id));
        data.insert("issue_time".into(), json!(go_time(self.issue_time)));
        data.insert("expire_time".into(), json!(go_time(self.expire_time)));
        data.insert(
            "last_renewal".into(),
            self.last_renewal.map_or(Value::Null, |t| json!(go_time(t))),
        );
        data.insert("path".into(), json!(self.path));
        data.insert("renewable".into(), json!(self.check_renewable(now).is_ok()));
        data.insert("ttl".into(), json!(remaining(self.expire_time, now)));
        if let Some(error) = &self.revoke_error {
            data.insert("revoke_error".into(), json!(error));
        }
        data
    }
}

/// The effective default and maximum lease TTL of a mount, in seconds (its tuned values, else
/// the system's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MountTtls {
    pub(crate) default: u64,
    pub(crate) max: u64,
}

/// The TTL of a lease being issued or renewed, as OpenBao's `framework.CalculateTTL`: the
/// client's increment, else the mount's TTL for the secret, else the mount's default; capped so
/// that the lease does not outlive `start` plus the smaller of the mount's max TTL and the
/// lease's own, with OpenBao's warning when capped.
pub(crate) fn calculate_ttl(
    now: DateTime<Utc>,
    start: DateTime<Utc>,
    increment: u64,
    ttl: u64,
    lease_max: u64,
    mount: MountTtls,
) -> Result<(u64, Option<String>), Error> {
    let mut max = mount.max;
    if lease_max > 0 && lease_max < max {
        max = lease_max;
    }
    if max == 0 {
        return Err(Error::internal("max TTL must be greater than zero"));
    }
    let wanted = [increment, ttl, mount.default]
        .into_iter()
        .find(|t| *t > 0)
        .unwrap_or(0);
    // Whole seconds, as OpenBao truncates both times before comparing.
    let max_valid = start.timestamp().saturating_add(secs(max)) - now.timestamp();
    if max_valid <= 0 {
        return Err(Error::invalid("past the max TTL, cannot renew"));
    }
    let max_valid = max_valid.unsigned_abs();
    if wanted > max_valid {
        let warning = format!(
            "TTL of {:?} exceeded the effective max_ttl of {:?}; TTL value is capped accordingly",
            human_duration(wanted),
            human_duration(max_valid)
        );
        return Ok((max_valid, Some(warning)));
    }
    Ok((wanted, None))
}

/// `now + secs`, saturating far in the future instead of overflowing.
pub(crate) fn after(now: DateTime<Utc>, secs_from_now: u64) -> DateTime<Utc> {
    Duration::try_seconds(secs(secs_from_now))
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Whole seconds from `now` until `t`, 0 when past.
pub(crate) fn remaining(t: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    u64::try_from((t - now).num_seconds()).unwrap_or(0)
}

/// A time as Go prints `time.RFC3339Nano`: UTC, the fraction without trailing zeros.
pub(crate) fn go_time(t: DateTime<Utc>) -> String {
    let mut out = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos != 0 {
        let digits = format!("{nanos:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// OpenBao's `humanDuration`: Go's duration text without zero minutes and seconds
/// (`1h`, `1h30m`, `1h1s`, `90s` as `1m30s`).
pub(crate) fn human_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, 0, s) => format!("{h}h{s}s"),
        (h, m, 0) => format!("{h}h{m}m"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

fn secs(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX / 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNT: MountTtls = MountTtls {
        default: 3600,
        max: 7200,
    };

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn ttl_is_the_increment_else_the_mounts_else_the_default() {
        let now = at(1_000_000);
        assert_eq!(
            calculate_ttl(now, now, 60, 120, 0, MOUNT).unwrap(),
            (60, None)
        );
        assert_eq!(
            calculate_ttl(now, now, 0, 120, 0, MOUNT).unwrap(),
            (120, None)
        );
        assert_eq!(
            calculate_ttl(now, now, 0, 0, 0, MOUNT).unwrap(),
            (3600, None)
        );
    }

    #[test]
    fn ttl_is_capped_by_the_max_from_issue_with_openbaos_warning() {
        let issued = at(1_000_000);
        let (ttl, warning) = calculate_ttl(issued, issued, 0, 10_800, 0, MOUNT).unwrap();
        assert_eq!(ttl, 7200);
        assert_eq!(
            warning.unwrap(),
            r#"TTL of "3h" exceeded the effective max_ttl of "2h"; TTL value is capped accordingly"#
        );
        // An hour and a half later only 30 minutes are left of the mount's 2h.
        let later = at(1_000_000 + 5400);
        assert_eq!(
            calculate_ttl(later, issued, 3600, 0, 0, MOUNT).unwrap().0,
            1800
        );
        // The lease's own max is smaller than the mount's.
        assert_eq!(
            calculate_ttl(issued, issued, 0, 3600, 600, MOUNT)
                .unwrap()
                .0,
            600
        );
        let past = at(1_000_000 + 7200);
        assert!(matches!(
            calculate_ttl(past, issued, 60, 0, 0, MOUNT),
            Err(Error::InvalidRequest(m)) if m == "past the max TTL, cannot renew"
        ));
    }

    #[test]
    fn times_and_durations_print_as_openbao() {
        let t = DateTime::from_timestamp(1_795_814_179, 267_293_100).unwrap();
        assert_eq!(go_time(t), "2026-11-27T21:16:19.2672931Z");
        assert_eq!(go_time(at(1_795_814_179)), "2026-11-27T21:16:19Z");
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(90), "1m30s");
        assert_eq!(human_duration(1800), "30m");
        assert_eq!(human_duration(5400), "1h30m");
        assert_eq!(human_duration(3601), "1h1s");
    }

    #[test]
    fn an_irrevocable_or_expired_lease_is_not_renewable() {
        let now = at(1_000_000);
        let mut entry = LeaseEntry {
            lease_id: "x/y/z".into(),
            path: "x/y".into(),
            mount_uuid: String::new(),
            mount_accessor: String::new(),
            token_hash: String::new(),
            internal_data: Map::new(),
            renewable: true,
            max_ttl: 0,
            issue_time: now,
            expire_time: at(1_000_060),
            last_renewal: None,
            due: at(1_000_060),
            attempts: 0,
            revoke_error: None,
        };
        assert!(entry.check_renewable(now).is_ok());
        assert_eq!(entry.lookup_data(now)["ttl"], json!(60));
        assert!(entry.check_renewable(at(1_000_061)).is_err());
        entry.revoke_error = Some("out of retries".into());
        assert!(entry.check_renewable(now).is_err());
        assert_eq!(entry.lookup_data(now)["renewable"], json!(false));
        assert_eq!(
            entry.lookup_data(now)["revoke_error"],
            json!("out of retries")
        );
    }
}
