//! Where leases and their indexes live in the barrier. Every list the revoker makes is bounded
//! by a day, a minute or one token, never by the number of leases:
//!
//! - `sys/expire/id/<lease id>`: the lease (lease ids are paths, so listing by prefix is
//!   listing a directory, as OpenBao's `sys/expire/id/`);
//! - `sys/expire/due/<day>/<minute>/<second>-<hash>`: the lease id, by the time the revoker
//!   must take it up (expiry, or the next retry); the earliest bucket is found by listing days,
//!   then that day's minutes, never every lease. A token with a TTL has its own entry among
//!   them, `<second>-token-<token hash>` holding the token hash, at its expiry (OpenBao's tokens
//!   are auth leases in the same manager);
//! - `sys/expire/token/<token hash>/<hash>`: the lease id, by the token that created it;
//! - `sys/expire/revoked-token/<token hash>`: written in the batch that deletes a token, so its
//!   leases are revoked even if the server stops right after;
//! - `sys/expire/irrevocable/<hash>`: a short record of each lease revocation gave up on.

use chrono::{DateTime, Utc};
use coffer_sdk::Error;
use sha2::{Digest, Sha256};

use crate::barrier::Barrier;

pub(crate) const ID: &str = "sys/expire/id/";
pub(crate) const DUE: &str = "sys/expire/due/";
pub(crate) const BY_TOKEN: &str = "sys/expire/token/";
pub(crate) const REVOKED_TOKENS: &str = "sys/expire/revoked-token/";
pub(crate) const IRREVOCABLE: &str = "sys/expire/irrevocable/";
/// Between the second and the hash of a token's due-index leaf.
const TOKEN_MARK: &str = "-token-";

/// The key of a lease entry.
pub(crate) fn id_key(lease_id: &str) -> String {
    format!("{ID}{lease_id}")
}

/// Whether `id` can name a lease: non-empty `/`-separated segments, none `.` or `..`, so a
/// client-supplied id never addresses anything outside `sys/expire/id/`.
pub(crate) fn valid_lease_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

/// Whether `prefix` (possibly ending in `/`) can name a directory of leases.
pub(crate) fn valid_prefix(prefix: &str) -> bool {
    prefix.is_empty() || valid_lease_id(prefix.strip_suffix('/').unwrap_or(prefix))
}

/// A short fixed-length name of a lease for index keys (lease ids hold `/`).
pub(crate) fn lease_hash(lease_id: &str) -> String {
    hex::encode(&Sha256::digest(lease_id.as_bytes())[..16])
}

/// The due-index key of a lease taken up at `due`.
pub(crate) fn due_key(due: DateTime<Utc>, lease_id: &str) -> String {
    format!("{}-{}", due_prefix(due), lease_hash(lease_id))
}

/// The due-index key of a token expiring at `expire_time`.
pub(crate) fn token_due_key(expire_time: DateTime<Utc>, token_hash: &str) -> String {
    format!("{}{TOKEN_MARK}{token_hash}", due_prefix(expire_time))
}

/// `sys/expire/due/<day>/<minute>/<second>` of a due time. The second is rounded up, so that
/// the revoker, which compares whole seconds, never takes anything up early.
fn due_prefix(due: DateTime<Utc>) -> String {
    let mut secs = due.timestamp().max(0);
    if due.timestamp_subsec_nanos() > 0 {
        secs += 1;
    }
    format!("{DUE}{:08}/{:010}/{secs:012}", secs / 86_400, secs / 60)
}

/// What a due-index entry makes due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Due {
    /// A lease, by id.
    Lease(String),
    /// A token, by hash.
    Token(String),
}

impl Due {
    /// The entry at `key` holding `value`: a token's leaf carries the mark (a lease's leaf is
    /// `<second>-<hex>` and cannot).
    pub(crate) fn of(key: &str, value: &[u8]) -> Due {
        let value = String::from_utf8_lossy(value).into_owned();
        if key
            .rsplit('/')
            .next()
            .is_some_and(|leaf| leaf.contains(TOKEN_MARK))
        {
            Due::Token(value)
        } else {
            Due::Lease(value)
        }
    }
}

/// The token-index key of a lease.
pub(crate) fn token_key(token_hash: &str, lease_id: &str) -> String {
    format!("{BY_TOKEN}{token_hash}/{}", lease_hash(lease_id))
}

/// The irrevocable-record key of a lease.
pub(crate) fn irrevocable_key(lease_id: &str) -> String {
    format!("{IRREVOCABLE}{}", lease_hash(lease_id))
}

/// Up to `limit` due-index entries whose second is at or before `now` (unix seconds),
/// earliest first: `(index key, what is due)`.
pub(crate) async fn due(
    barrier: &Barrier,
    now: i64,
    limit: usize,
) -> Result<Vec<(String, Due)>, Error> {
    let mut out = Vec::new();
    for day in barrier.list(DUE).await? {
        if bucket(&day).is_none_or(|d| d > now.div_euclid(86_400)) {
            break;
        }
        let day_prefix = format!("{DUE}{day}");
        for minute in barrier.list(&day_prefix).await? {
            if bucket(&minute).is_none_or(|m| m > now.div_euclid(60)) {
                return Ok(out);
            }
            let minute_prefix = format!("{day_prefix}{minute}");
            for leaf in barrier.list(&minute_prefix).await? {
                if leaf_second(&leaf).is_none_or(|s| s > now) {
                    return Ok(out);
                }
                let key = format!("{minute_prefix}{leaf}");
                if let Some(value) = barrier.get(&key).await? {
                    let due = Due::of(&key, &value);
                    out.push((key, due));
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The second (unix) of the earliest due-index entry, if any.
pub(crate) async fn next_due(barrier: &Barrier) -> Result<Option<i64>, Error> {
    let Some(day) = barrier.list(DUE).await?.into_iter().next() else {
        return Ok(None);
    };
    let day_prefix = format!("{DUE}{day}");
    let Some(minute) = barrier.list(&day_prefix).await?.into_iter().next() else {
        return Ok(None);
    };
    let leaves = barrier.list(&format!("{day_prefix}{minute}")).await?;
    Ok(leaves.first().and_then(|leaf| leaf_second(leaf)))
}

/// A day or minute directory name (`00020419/`) as a number.
fn bucket(name: &str) -> Option<i64> {
    name.strip_suffix('/')?.parse().ok()
}

/// The second of a due-index leaf (`001795814179-<hash>`).
fn leaf_second(leaf: &str) -> Option<i64> {
    leaf.split_once('-')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_keys_sort_by_time_and_never_fall_early() {
        let t = |s, n| DateTime::from_timestamp(s, n).unwrap();
        let a = due_key(t(1_795_814_179, 0), "p/a");
        let b = due_key(t(1_795_814_179, 1), "p/a");
        let c = due_key(t(1_795_900_000, 0), "p/a");
        assert!(a.ends_with(&format!("001795814179-{}", lease_hash("p/a"))));
        assert!(b.contains("/001795814180-"), "{b}");
        assert!(a < b && b < c);
        assert_eq!(
            leaf_second(a.rsplit('/').next().unwrap()),
            Some(1_795_814_179)
        );
    }

    #[test]
    fn token_due_keys_share_the_buckets_and_are_told_apart_from_leases() {
        let at = DateTime::from_timestamp(1_795_814_179, 5).unwrap();
        let token = token_due_key(at, "ab12");
        let lease = due_key(at, "p/a");
        assert_eq!(
            token.rsplit_once('/').unwrap().0,
            lease.rsplit_once('/').unwrap().0
        );
        assert_eq!(
            leaf_second(token.rsplit('/').next().unwrap()),
            Some(1_795_814_180)
        );
        assert_eq!(Due::of(&token, b"ab12"), Due::Token("ab12".into()));
        assert_eq!(Due::of(&lease, b"p/a"), Due::Lease("p/a".into()));
    }

    #[test]
    fn lease_ids_cannot_climb_out_of_the_lease_directory() {
        assert!(valid_lease_id("pki/issue/web/abc"));
        for bad in ["", "a//b", "../token/id/x", "a/./b", "a/", "/a"] {
            assert!(!valid_lease_id(bad), "{bad}");
        }
        assert!(valid_prefix("") && valid_prefix("pki/") && valid_prefix("pki/issue"));
        assert!(!valid_prefix("../") && !valid_prefix("a//"));
    }
}
