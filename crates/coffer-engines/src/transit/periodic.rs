//! Scheduled work of a transit mount: automatic key rotation (openbao `backend.go`
//! `periodicFunc`, `autoRotateKeys`, `rotateIfRequired`).
//!
//! Core calls `Backend::periodic` about once a minute; like OpenBao, the mount looks at its
//! keys at most once an hour (the shortest `auto_rotate_period` is an hour). A key is due when
//! now is strictly after its latest version's creation time plus its period; it is then rotated
//! exactly as `keys/<name>/rotate` does, under the key's lock, with the same storage writes and
//! cache update.

use chrono::DateTime;
use coffer_sdk::{Error, Storage};

use super::keys::rotate_blocking;
use super::policy::Policy;
use super::{load_policy, Transit, POLICY_PREFIX};
use crate::time::now_nanos;

impl Transit {
    /// OpenBao's `periodicFunc`: runs the auto-rotation check when an hour has passed since the
    /// last one (the first call always runs).
    pub(super) async fn run_periodic(&self, storage: &dyn Storage) -> Result<(), Error> {
        let now = now_nanos();
        {
            let mut next = self
                .next_auto_rotate_check
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if now < *next {
                return Ok(());
            }
            *next = now.saturating_add(AUTO_ROTATE_CHECK_INTERVAL_NANOS);
        }
        auto_rotate_keys(self, storage, now).await
    }
}

/// Rotates every key of the mount that is due at `now` (nanoseconds since the epoch). One
/// key's failure does not stop the others; the failures are reported together.
pub(super) async fn auto_rotate_keys(
    transit: &Transit,
    storage: &dyn Storage,
    now: i64,
) -> Result<(), Error> {
    let names = storage.list(POLICY_PREFIX).await?;
    let mut failures = Vec::new();
    for name in names {
        if let Err(e) = rotate_if_required(transit, storage, &name, now).await {
            let detail = match e {
                Error::Internal(detail) => detail,
                other => other.to_string(),
            };
            failures.push(format!("{name}: {detail}"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::internal(format_args!(
            "automatic rotation of transit keys failed: {}",
            failures.join("; ")
        )))
    }
}

/// Rotates `name` if it has an auto-rotate period and its latest version is older than that.
/// Reads the policy from storage under the key's lock, as `keys/<name>/rotate` does, so a
/// concurrent rotation is seen and the key is not rotated twice.
async fn rotate_if_required(
    transit: &Transit,
    storage: &dyn Storage,
    name: &str,
    now: i64,
) -> Result<(), Error> {
    let _guard = transit.lock(name).await;
    let Some(mut policy) = load_policy(storage, name).await? else {
        return Ok(());
    };
    // OpenBao skips imported keys that may not rotate; a soft-deleted key cannot rotate at all
    // (`keys/<name>/rotate` refuses it), so it is skipped rather than failed every hour.
    if (policy.imported && !policy.allow_imported_key_rotation) || policy.soft_deleted {
        return Ok(());
    }
    if !is_due(&policy, now) {
        return Ok(());
    }
    policy.imported = false;
    let policy = rotate_blocking(policy).await?;
    transit.persist(storage, policy).await?;
    Ok(())
}

/// Whether `now` is strictly after the latest version's creation time plus the period. A
/// missing latest version or Go's zero time counts as created long ago (OpenBao reads a zero
/// `time.Time` then), so such a key is rotated.
fn is_due(policy: &Policy, now: i64) -> bool {
    if policy.auto_rotate_period <= 0 {
        return false;
    }
    let created = policy
        .keys
        .get(&policy.latest_version.to_string())
        .map_or(i64::MIN, |entry| {
            match DateTime::parse_from_rfc3339(&entry.time) {
                Ok(time) => time.timestamp_nanos_opt().unwrap_or(i64::MIN),
                // Older entries may carry only the deprecated seconds.
                Err(_) => entry.creation_time.saturating_mul(1_000_000_000),
            }
        });
    now > created.saturating_add(policy.auto_rotate_period)
}

/// OpenBao's `checkAutoRotateAfter` step: an hour.
const AUTO_ROTATE_CHECK_INTERVAL_NANOS: i64 = 3_600 * 1_000_000_000;

#[cfg(test)]
mod tests {
    use coffer_sdk::{Backend, Operation, Storage};
    use serde_json::{json, Value};

    use super::*;
    use crate::testing::{req, MemStorage};

    const HOUR: i64 = 3_600 * 1_000_000_000;

    async fn create(t: &Transit, s: &MemStorage, name: &str, body: Value) {
        t.handle(req(Operation::Update, &format!("keys/{name}"), body), s)
            .await
            .unwrap();
    }

    async fn latest(t: &Transit, s: &MemStorage, name: &str) -> i64 {
        let resp = t
            .handle(req(Operation::Read, &format!("keys/{name}"), json!({})), s)
            .await
            .unwrap()
            .unwrap();
        resp.data.unwrap()["latest_version"].as_i64().unwrap()
    }

    async fn stored_latest(s: &MemStorage, name: &str) -> i64 {
        let raw = s.get(&format!("policy/{name}")).await.unwrap().unwrap();
        let policy: Value = serde_json::from_slice(&raw).unwrap();
        policy["latest_version"].as_i64().unwrap()
    }

    /// Rewrites version `version` of the stored policy as created `age` nanoseconds ago.
    async fn backdate(t: &Transit, s: &MemStorage, name: &str, version: i64, age: i64) {
        let key = format!("policy/{name}");
        let raw = s.get(&key).await.unwrap().unwrap();
        let mut policy: Value = serde_json::from_slice(&raw).unwrap();
        let when = now_nanos() - age;
        let entry = &mut policy["keys"][version.to_string()];
        entry["time"] = json!(crate::time::rfc3339_nanos(when));
        entry["creation_time"] = json!(when / 1_000_000_000);
        s.put(&key, serde_json::to_vec(&policy).unwrap())
            .await
            .unwrap();
        t.invalidate(&key).await;
    }

    #[tokio::test]
    async fn periodic_rotates_only_keys_past_their_period() {
        let (t, s) = (Transit::new(), MemStorage::default());
        create(&t, &s, "due", json!({"auto_rotate_period": "1h"})).await;
        create(&t, &s, "fresh", json!({"auto_rotate_period": "2h"})).await;
        create(&t, &s, "manual", json!({})).await;
        backdate(&t, &s, "due", 1, HOUR + 1_000_000_000).await;
        backdate(&t, &s, "fresh", 1, HOUR).await;
        backdate(&t, &s, "manual", 1, 1_000 * HOUR).await;
        // Warm the cache so the test sees it replaced, not just filled.
        assert_eq!(latest(&t, &s, "due").await, 1);

        t.periodic(&s).await.unwrap();

        assert_eq!(latest(&t, &s, "due").await, 2);
        assert_eq!(stored_latest(&s, "due").await, 2);
        let archive = s.get("archive/due").await.unwrap().unwrap();
        let archive: Value = serde_json::from_slice(&archive).unwrap();
        assert_eq!(archive["keys"].as_array().unwrap().len(), 3);
        assert_eq!(latest(&t, &s, "fresh").await, 1);
        assert_eq!(latest(&t, &s, "manual").await, 1);
        // The new version is fresh: another pass (an hour later) leaves it alone.
        auto_rotate_keys(&t, &s, now_nanos()).await.unwrap();
        assert_eq!(latest(&t, &s, "due").await, 2);
    }

    #[tokio::test]
    async fn periodic_checks_at_most_once_an_hour() {
        let (t, s) = (Transit::new(), MemStorage::default());
        create(&t, &s, "k", json!({"auto_rotate_period": "1h"})).await;
        t.periodic(&s).await.unwrap();
        assert_eq!(latest(&t, &s, "k").await, 1);
        backdate(&t, &s, "k", 1, 2 * HOUR).await;
        // Within the hour after the last check nothing is looked at.
        t.periodic(&s).await.unwrap();
        assert_eq!(latest(&t, &s, "k").await, 1);
    }

    #[tokio::test]
    async fn due_time_is_latest_version_creation_plus_period() {
        let (t, s) = (Transit::new(), MemStorage::default());
        create(&t, &s, "k", json!({"auto_rotate_period": "3h"})).await;
        let now = now_nanos();
        auto_rotate_keys(&t, &s, now + 3 * HOUR - 1_000_000_000)
            .await
            .unwrap();
        assert_eq!(latest(&t, &s, "k").await, 1);
        auto_rotate_keys(&t, &s, now + 3 * HOUR + 1_000_000_000)
            .await
            .unwrap();
        assert_eq!(latest(&t, &s, "k").await, 2);
        // The clock now counts from version 2, created just now, not from version 1.
        auto_rotate_keys(&t, &s, now_nanos() + 3 * HOUR - 1_000_000_000)
            .await
            .unwrap();
        assert_eq!(latest(&t, &s, "k").await, 2);
    }

    #[tokio::test]
    async fn imported_keys_that_may_not_rotate_are_skipped() {
        let (t, s) = (Transit::new(), MemStorage::default());
        create(&t, &s, "imp", json!({"auto_rotate_period": "1h"})).await;
        let raw = s.get("policy/imp").await.unwrap().unwrap();
        let mut policy: Value = serde_json::from_slice(&raw).unwrap();
        policy["Imported"] = json!(true);
        s.put("policy/imp", serde_json::to_vec(&policy).unwrap())
            .await
            .unwrap();
        t.invalidate("policy/imp").await;
        auto_rotate_keys(&t, &s, now_nanos() + 2 * HOUR)
            .await
            .unwrap();
        assert_eq!(stored_latest(&s, "imp").await, 1);
    }
}
