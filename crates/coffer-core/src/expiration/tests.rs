//! The expiration manager against a real barrier on an in-memory store, with a recording mount
//! and a clock the tests move by hand (`run_due(now)`), so that nothing waits on real time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex as StdMutex;

use async_trait::async_trait;
use coffer_sdk::{BackendKind, Request};
use serde_json::{json, Value};

use super::*;
use crate::barrier::Key;
use crate::mount::{MountConfig, Table};
use crate::view::BarrierView;

/// A mount that records what it is asked to revoke and renew, and fails revocations on demand.
#[derive(Default)]
struct Recorder {
    revoked: StdMutex<Vec<Map<String, Value>>>,
    renewed: StdMutex<Vec<(u64, Option<std::time::SystemTime>)>>,
    /// Revocations still to fail, and how.
    failures: AtomicU32,
    unrecoverable: bool,
}

impl Recorder {
    fn revoked(&self) -> Vec<Map<String, Value>> {
        self.revoked.lock().unwrap().clone()
    }
}

#[async_trait]
impl Backend for Recorder {
    fn kind(&self) -> BackendKind {
        BackendKind::Secrets
    }

    async fn handle(&self, _: Request, _: &dyn Storage) -> Result<Option<Response>, Error> {
        Err(Error::UnsupportedOperation)
    }

    async fn renew(&self, lease: &Lease, _: &dyn Storage) -> Result<Response, Error> {
        self.renewed
            .lock()
            .unwrap()
            .push((lease.increment, lease.issue_time));
        Ok(Response {
            lease: Some(Lease {
                ttl: 120,
                renewable: true,
                ..Lease::default()
            }),
            ..Response::default()
        })
    }

    async fn revoke(&self, lease: &Lease, _: &dyn Storage) -> Result<(), Error> {
        let left = self.failures.load(Ordering::SeqCst);
        if left > 0 {
            self.failures.store(left - 1, Ordering::SeqCst);
            return Err(if self.unrecoverable {
                Error::invalid("no such user")
            } else {
                Error::Unavailable("database unreachable".into())
            });
        }
        self.revoked
            .lock()
            .unwrap()
            .push(lease.internal_data.clone());
        Ok(())
    }
}

/// One mount, the recorder, found by uuid.
struct OneMount {
    backend: Arc<Recorder>,
    storage: Arc<BarrierView>,
    entry: Arc<MountEntry>,
}

impl Mounts for OneMount {
    fn mount_of(&self, lease: &LeaseEntry) -> Result<LeaseMount, Error> {
        if lease.mount_uuid != self.entry.uuid {
            return Err(Error::invalid("the mount is gone"));
        }
        Ok(LeaseMount {
            backend: self.backend.clone(),
            storage: self.storage.clone(),
            ttls: TTLS,
        })
    }
}

const TTLS: MountTtls = MountTtls {
    default: 600,
    max: 3600,
};

/// The real token store, without the cubbyholes the production revoker also destroys.
#[async_trait]
impl Tokens for TokenStore {
    async fn revoke_expired(&self, token_hash: &str, now: DateTime<Utc>) -> Result<(), Error> {
        self.revoke_if_expired(token_hash, now).await.map(|_| ())
    }
}

struct Fixture {
    barrier: Arc<Barrier>,
    manager: Arc<ExpirationManager>,
    mount: Arc<OneMount>,
    tokens: Arc<TokenStore>,
}

impl Fixture {
    async fn new() -> Fixture {
        Fixture::with(Recorder::default()).await
    }

    async fn with(recorder: Recorder) -> Fixture {
        let barrier = Arc::new(Barrier::new(Arc::new(coffer_storage::InMem::new())));
        let key = Key::generate();
        barrier.initialize(&key).await.unwrap();
        barrier.unseal(&key).await.unwrap();
        let manager = Arc::new(ExpirationManager::with_settings(
            barrier.clone(),
            Settings {
                max_attempts: 3,
                retry_base: Duration::ZERO,
                batch: 4,
                concurrency: 2,
                idle: Duration::from_secs(60),
            },
        ));
        let entry = Arc::new(MountEntry {
            table: Table::Secrets,
            path: "pki/".into(),
            mount_type: "pki".into(),
            description: String::new(),
            uuid: "mount-uuid".into(),
            accessor: "pki_1234".into(),
            config: MountConfig::default(),
            options: BTreeMap::new(),
            local: false,
            seal_wrap: false,
        });
        let mount = Arc::new(OneMount {
            backend: Arc::new(recorder),
            storage: Arc::new(BarrierView::new(barrier.clone(), "logical/mount-uuid/")),
            entry,
        });
        let tokens = Arc::new(
            TokenStore::load(barrier.clone(), manager.clone())
                .await
                .unwrap(),
        );
        Fixture {
            barrier,
            manager,
            mount,
            tokens,
        }
    }

    fn mounts(&self) -> Arc<dyn Mounts> {
        self.mount.clone()
    }

    fn tokens(&self) -> Arc<dyn Tokens> {
        self.tokens.clone()
    }

    /// A token of `ttl` seconds (renewable), as `auth/token/create` makes one.
    async fn token(&self, ttl: u64, parent: Option<&str>) -> crate::token::TokenEntry {
        let (_, entry) = self
            .tokens
            .create(crate::token::TokenParams {
                parent: parent.map(str::to_owned),
                policies: vec!["default".into()],
                ttl,
                renewable: true,
                ..Default::default()
            })
            .await
            .unwrap();
        entry
    }

    /// Whether the token store still holds a token (read from storage: a lookup would
    /// revoke an expired token itself).
    async fn token_stored(&self, hash: &str) -> bool {
        self.barrier
            .get(&format!("sys/token/id/{hash}"))
            .await
            .unwrap()
            .is_some()
    }

    /// Registers a lease of `path` for `token`; returns the response as the client gets it.
    async fn issue(&self, path: &str, token: &str, lease: Lease) -> Result<Response, Error> {
        let mut resp = Response {
            lease: Some(lease),
            ..Response::default()
        };
        let issuer = Issuer {
            path: path.into(),
            token_hash: token.into(),
            mount: self.mount.entry.clone(),
            ttls: TTLS,
        };
        self.manager
            .register(
                issuer,
                self.mount.backend.as_ref(),
                self.mount.storage.as_ref(),
                &mut resp,
            )
            .await?;
        Ok(resp)
    }

    /// A lease of `ttl` seconds with the serial `serial` as internal data.
    async fn lease(&self, path: &str, token: &str, ttl: u64, serial: &str) -> String {
        let resp = self
            .issue(path, token, serial_lease(ttl, serial))
            .await
            .unwrap();
        resp.lease.unwrap().lease_id
    }

    async fn run(&self, now: DateTime<Utc>) -> Pass {
        self.manager
            .run_due(self.mounts(), self.tokens(), now)
            .await
            .unwrap()
    }

    /// Every key under `prefix`, recursively.
    async fn keys(&self, prefix: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut pending = vec![prefix.to_owned()];
        while let Some(dir) = pending.pop() {
            for child in self.barrier.list(&dir).await.unwrap() {
                if child.ends_with('/') {
                    pending.push(format!("{dir}{child}"));
                } else {
                    out.push(format!("{dir}{child}"));
                }
            }
        }
        out
    }
}

fn serial_lease(ttl: u64, serial: &str) -> Lease {
    let mut internal = Map::new();
    internal.insert("serial_number".into(), json!(serial));
    Lease {
        ttl,
        internal_data: internal,
        ..Lease::default()
    }
}

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

/// `n` seconds from now, on a whole second: the due index counts whole seconds, so passes at
/// this same instant see what an earlier one rescheduled for "now".
fn later(n: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp() + n, 0).unwrap()
}

#[tokio::test]
async fn a_registered_lease_keeps_its_internal_data_out_of_the_response() {
    let f = Fixture::new().await;
    let resp = f
        .issue("pki/issue/web", "token-a", serial_lease(60, "aa:bb"))
        .await
        .unwrap();
    let lease = resp.lease.unwrap();
    let (dir, random) = lease.lease_id.rsplit_once('/').unwrap();
    assert_eq!(dir, "pki/issue/web");
    assert!(random.len() == 24 && random.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(lease.ttl, 60);
    assert!(lease.internal_data.is_empty(), "internal data left core");

    let entry = f.manager.lookup(&lease.lease_id).await.unwrap().unwrap();
    assert_eq!(entry.internal_data["serial_number"], json!("aa:bb"));
    assert_eq!(entry.path, "pki/issue/web");
    assert_eq!(entry.token_hash, "token-a");
    let data = entry.lookup_data(Utc::now());
    assert_eq!(data["id"], json!(lease.lease_id));
    assert_eq!(data["renewable"], json!(false));
    assert_eq!(data["last_renewal"], Value::Null);
    assert!(data["ttl"].as_u64().unwrap() <= 60);

    assert_eq!(f.manager.list("pki/").await.unwrap(), ["issue/"]);
    assert_eq!(
        f.manager.list("pki/issue/web/").await.unwrap(),
        [random.to_owned()]
    );
    assert!(f.manager.list("../").await.unwrap().is_empty());
    assert!(f.manager.lookup("pki/../sys").await.unwrap().is_none());
}

#[tokio::test]
async fn a_ttl_beyond_the_mounts_max_is_capped_with_openbaos_warning() {
    let f = Fixture::new().await;
    let resp = f
        .issue("pki/issue/web", "t", serial_lease(7200, "01"))
        .await
        .unwrap();
    assert_eq!(resp.lease.unwrap().ttl, 3600);
    assert_eq!(
        resp.warnings,
        [r#"TTL of "2h" exceeded the effective max_ttl of "1h"; TTL value is capped accordingly"#]
    );
    // No TTL from the mount: the mount's default.
    let resp = f
        .issue("pki/issue/web", "t", Lease::default())
        .await
        .unwrap();
    assert_eq!(resp.lease.unwrap().ttl, 600);
}

#[tokio::test]
async fn a_lease_without_a_token_is_refused_and_its_secret_revoked() {
    let f = Fixture::new().await;
    let err = f
        .issue("pki/issue/web", "", serial_lease(60, "0f"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Internal(_)));
    assert_eq!(f.mount.backend.revoked()[0]["serial_number"], json!("0f"));
    assert!(f.keys("sys/expire/").await.is_empty());
}

#[tokio::test]
async fn due_leases_are_revoked_a_batch_at_a_time_and_leave_no_index_behind() {
    let f = Fixture::new().await;
    let start = Utc::now();
    for i in 0..10 {
        f.lease("pki/issue/web", "t", 60, &format!("{i:02}")).await;
    }
    assert_eq!(
        f.run(start + secs(30)).await,
        Pass {
            more: false,
            failed: 0
        }
    );
    assert!(f.mount.backend.revoked().is_empty());

    let later = start + secs(62);
    assert_eq!(
        f.run(later).await,
        Pass {
            more: true,
            failed: 0
        }
    );
    assert_eq!(f.mount.backend.revoked().len(), 4);
    assert!(f.run(later).await.more);
    assert_eq!(
        f.run(later).await,
        Pass {
            more: false,
            failed: 0
        }
    );
    let mut serials: Vec<String> = f
        .mount
        .backend
        .revoked()
        .iter()
        .map(|d| d["serial_number"].as_str().unwrap().to_owned())
        .collect();
    serials.sort();
    assert_eq!(
        serials,
        (0..10).map(|i| format!("{i:02}")).collect::<Vec<_>>()
    );
    assert!(f.keys("sys/expire/").await.is_empty());
}

#[tokio::test]
async fn leases_outlive_the_manager_that_registered_them() {
    let f = Fixture::new().await;
    let id = f.lease("pki/issue/web", "t", 60, "0a").await;
    let fresh = Arc::new(ExpirationManager::new(f.barrier.clone()));
    assert!(fresh.lookup(&id).await.unwrap().is_some());
    fresh
        .run_due(f.mounts(), f.tokens(), later(61))
        .await
        .unwrap();
    assert_eq!(f.mount.backend.revoked().len(), 1);
    assert!(fresh.lookup(&id).await.unwrap().is_none());
}

#[tokio::test]
async fn failing_revocations_are_retried_then_the_lease_is_marked_irrevocable() {
    let f = Fixture::with(Recorder {
        failures: AtomicU32::new(u32::MAX),
        ..Recorder::default()
    })
    .await;
    let id = f.lease("pki/issue/web", "t", 1, "0b").await;
    let now = later(5);
    for attempt in 1..=2 {
        f.run(now).await;
        let entry = f.manager.lookup(&id).await.unwrap().unwrap();
        assert_eq!(entry.attempts, attempt);
        assert!(!entry.is_irrevocable());
    }
    f.run(now).await;
    let entry = f.manager.lookup(&id).await.unwrap().unwrap();
    assert_eq!(
        entry.revoke_error.as_deref(),
        Some("out of retries: database unreachable")
    );
    assert_eq!(
        entry.lookup_data(Utc::now())["revoke_error"],
        json!("out of retries: database unreachable")
    );
    // Not taken up again, however late.
    let failures_left = f.mount.backend.failures.load(Ordering::SeqCst);
    f.run(now + secs(86_400)).await;
    assert_eq!(
        f.mount.backend.failures.load(Ordering::SeqCst),
        failures_left
    );
    let listed = f.manager.irrevocable().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].lease_id, id);
    assert_eq!(listed[0].mount_accessor, "pki_1234");
    // Token revocation does not resurrect it either.
    assert!(f.manager.revoke_lazily(&id).await.unwrap());
    assert!(f
        .manager
        .lookup(&id)
        .await
        .unwrap()
        .unwrap()
        .is_irrevocable());

    // An explicit revoke tries the mount again; force removes it whatever the mount says.
    assert!(f
        .manager
        .revoke(f.mount.as_ref(), &id, false)
        .await
        .is_err());
    f.manager.revoke(f.mount.as_ref(), &id, true).await.unwrap();
    assert!(f.manager.lookup(&id).await.unwrap().is_none());
    assert!(f.keys("sys/expire/").await.is_empty());
}

#[tokio::test]
async fn an_error_retrying_cannot_fix_makes_a_lease_irrevocable_at_once() {
    let f = Fixture::with(Recorder {
        failures: AtomicU32::new(1),
        unrecoverable: true,
        ..Recorder::default()
    })
    .await;
    let id = f.lease("pki/issue/web", "t", 1, "0c").await;
    f.run(later(5)).await;
    let entry = f.manager.lookup(&id).await.unwrap().unwrap();
    assert_eq!(entry.attempts, 1);
    assert_eq!(entry.revoke_error.as_deref(), Some("no such user"));
    // The mount works again: an explicit revoke succeeds and clears every record.
    f.manager
        .revoke(f.mount.as_ref(), &id, false)
        .await
        .unwrap();
    assert_eq!(f.mount.backend.revoked().len(), 1);
    assert!(f.manager.irrevocable().await.unwrap().is_empty());
}

#[tokio::test]
async fn retries_back_off_exponentially_with_jitter() {
    let f = Fixture::new().await;
    let manager = ExpirationManager::with_settings(
        f.barrier.clone(),
        Settings {
            retry_base: Duration::from_secs(10),
            ..Settings::default()
        },
    );
    for _ in 0..50 {
        let first = manager.backoff(1);
        assert!(first >= Duration::from_secs(10) && first < Duration::from_secs(30));
        let fifth = manager.backoff(5);
        assert!(fifth >= Duration::from_secs(160) && fifth < Duration::from_secs(480));
    }
    // A failed lease is not taken up again before its backoff.
    let slow = Arc::new(ExpirationManager::with_settings(
        f.barrier.clone(),
        Settings {
            retry_base: Duration::from_secs(10),
            ..Settings::default()
        },
    ));
    f.mount.backend.failures.store(1, Ordering::SeqCst);
    let id = f.lease("pki/issue/web", "t", 1, "0d").await;
    let now = later(5);
    slow.run_due(f.mounts(), f.tokens(), now).await.unwrap();
    slow.run_due(f.mounts(), f.tokens(), now + secs(9))
        .await
        .unwrap();
    let entry = slow.lookup(&id).await.unwrap().unwrap();
    assert_eq!(entry.attempts, 1);
    assert!(entry.due >= now + secs(10));
    slow.run_due(f.mounts(), f.tokens(), now + secs(31))
        .await
        .unwrap();
    assert!(slow.lookup(&id).await.unwrap().is_none());
}

#[tokio::test]
async fn revoke_prefix_follows_path_segments() {
    let f = Fixture::new().await;
    let web = f.lease("pki/issue/web", "t", 600, "01").await;
    let web2 = f.lease("pki/issue/web", "t", 600, "02").await;
    let webx = f.lease("pki/issue/webx", "t", 600, "03").await;
    let sign = f.lease("pki/sign/web", "t", 600, "04").await;
    f.manager
        .revoke_prefix(f.mount.as_ref(), "pki/issue/web", false, true)
        .await
        .unwrap();
    for (id, alive) in [(&web, false), (&web2, false), (&webx, true), (&sign, true)] {
        assert_eq!(f.manager.lookup(id).await.unwrap().is_some(), alive, "{id}");
    }
    // A full lease id as the prefix revokes that lease.
    f.manager
        .revoke_prefix(f.mount.as_ref(), &sign, false, true)
        .await
        .unwrap();
    assert!(f.manager.lookup(&sign).await.unwrap().is_none());
    // Not synchronous: made due now, revoked by the next pass.
    f.manager
        .revoke_prefix(f.mount.as_ref(), "pki/", false, false)
        .await
        .unwrap();
    assert!(f.manager.lookup(&webx).await.unwrap().is_some());
    f.run(later(2)).await;
    assert!(f.manager.lookup(&webx).await.unwrap().is_none());
    assert_eq!(f.mount.backend.revoked().len(), 4);
}

#[tokio::test]
async fn a_revoked_tokens_leases_are_revoked_by_the_next_pass() {
    let f = Fixture::new().await;
    let mine = f.lease("pki/issue/web", "token-a", 3600, "0a").await;
    let other = f.lease("pki/issue/web", "token-b", 3600, "0b").await;
    f.barrier
        .apply(vec![f.manager.token_revoked("token-a")])
        .await
        .unwrap();
    f.run(later(2)).await;
    assert!(f.manager.lookup(&mine).await.unwrap().is_none());
    assert!(f.manager.lookup(&other).await.unwrap().is_some());
    assert_eq!(f.mount.backend.revoked()[0]["serial_number"], json!("0a"));
    assert!(f.keys("sys/expire/revoked-token/").await.is_empty());
    assert!(f.keys("sys/expire/token/token-a/").await.is_empty());
}

#[tokio::test]
async fn renewal_extends_a_renewable_lease_within_the_max() {
    let f = Fixture::new().await;
    let resp = f
        .issue(
            "db/creds/ro",
            "t",
            Lease {
                ttl: 60,
                renewable: true,
                ..Lease::default()
            },
        )
        .await
        .unwrap();
    let id = resp.lease.unwrap().lease_id;
    let renewed = f
        .manager
        .renew(f.mount.as_ref(), &id, 300)
        .await
        .unwrap()
        .unwrap();
    let lease = renewed.lease.unwrap();
    assert_eq!((lease.lease_id.as_str(), lease.ttl), (id.as_str(), 300));
    assert!(lease.renewable);
    let (increment, issued) = f.mount.backend.renewed.lock().unwrap()[0];
    assert_eq!(increment, 300);
    assert!(issued.is_some());
    let entry = f.manager.lookup(&id).await.unwrap().unwrap();
    assert!(entry.last_renewal.is_some());
    assert_eq!(entry.due, entry.expire_time);
    // One due-index entry, at the new expiry.
    assert_eq!(f.keys("sys/expire/due/").await.len(), 1);
    // Without an increment the mount's answer (120s) applies; beyond the max it is capped.
    let lease = f
        .manager
        .renew(f.mount.as_ref(), &id, 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lease.lease.unwrap().ttl, 120);
    let capped = f
        .manager
        .renew(f.mount.as_ref(), &id, 7200)
        .await
        .unwrap()
        .unwrap();
    assert!(capped.lease.unwrap().ttl <= 3600);
    assert_eq!(capped.warnings.len(), 1);

    let fixed = f.lease("pki/issue/web", "t", 60, "01").await;
    let refused = f
        .manager
        .renew(f.mount.as_ref(), &fixed, 0)
        .await
        .unwrap_err();
    assert!(matches!(refused, Error::InvalidRequest(m) if m == "lease is not renewable"));
    let unknown = f
        .manager
        .renew(f.mount.as_ref(), "pki/issue/web/nope", 0)
        .await
        .unwrap_err();
    assert!(matches!(unknown, Error::InvalidRequest(m) if m == "lease not found"));
}

#[tokio::test]
async fn a_lease_whose_mount_is_gone_becomes_irrevocable_without_retries() {
    let f = Fixture::new().await;
    let id = f.lease("pki/issue/web", "t", 1, "0e").await;
    let mut entry = f.manager.lookup(&id).await.unwrap().unwrap();
    entry.mount_uuid = "another-mount".into();
    f.barrier
        .apply(vec![put_json(index::id_key(&id), &entry).unwrap()])
        .await
        .unwrap();
    f.run(later(5)).await;
    let entry = f.manager.lookup(&id).await.unwrap().unwrap();
    assert_eq!(entry.revoke_error.as_deref(), Some("the mount is gone"));
    assert!(f.mount.backend.revoked().is_empty());
}

#[tokio::test]
async fn tidy_revokes_leases_of_tokens_that_no_longer_exist() {
    let f = Fixture::new().await;
    let live = f.token(3600, None).await;
    let kept = f.lease("pki/issue/web", &live.hash, 600, "01").await;
    let orphan = f
        .lease("pki/issue/web", "a-token-long-gone", 600, "02")
        .await;
    // A dangling index entry, as a crash between two writes could leave.
    f.barrier
        .put(
            &index::token_key("x", "pki/issue/web/gone"),
            b"pki/issue/web/gone".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(
        f.manager.tidy(f.mount.as_ref(), &f.tokens).await.unwrap(),
        1
    );
    assert!(f.manager.lookup(&kept).await.unwrap().is_some());
    assert!(f.manager.lookup(&orphan).await.unwrap().is_none());
    assert!(f.keys("sys/expire/token/x/").await.is_empty());
    // The live token's due entry is no lease's, and stays.
    let due = f.keys("sys/expire/due/").await;
    assert!(
        due.iter()
            .any(|k| k.ends_with(&format!("-token-{}", live.hash))),
        "{due:?}"
    );
}

#[tokio::test]
async fn an_expired_token_is_revoked_when_due_with_its_children_and_leases() {
    let f = Fixture::new().await;
    let parent = f.token(60, None).await;
    let child = f.token(3600, Some(&parent.hash)).await;
    let other = f.token(3600, None).await;
    let theirs = f.lease("pki/issue/web", &child.hash, 3600, "0c").await;
    let kept = f.lease("pki/issue/web", &other.hash, 3600, "0d").await;
    f.run(later(30)).await;
    assert!(f.token_stored(&parent.hash).await);
    // Past its expiry: revoked with its child; the revocation makes the child's lease due.
    f.run(later(61)).await;
    assert!(!f.token_stored(&parent.hash).await);
    assert!(!f.token_stored(&child.hash).await);
    assert!(f.token_stored(&other.hash).await);
    f.run(later(61)).await;
    assert!(f.manager.lookup(&theirs).await.unwrap().is_none());
    assert!(f.manager.lookup(&kept).await.unwrap().is_some());
    assert_eq!(f.mount.backend.revoked()[0]["serial_number"], json!("0c"));
    // The revoked tokens' due entries went with them; the other's is left.
    let due = f.keys("sys/expire/due/").await;
    assert_eq!(
        due.iter().filter(|k| k.contains("-token-")).count(),
        1,
        "{due:?}"
    );
}

#[tokio::test]
async fn a_renewed_token_is_not_revoked_at_its_old_expiry() {
    let f = Fixture::new().await;
    let token = f.token(60, None).await;
    let old = token.expire_time.unwrap();
    let renewed = f.tokens.renew(&token.hash, 3600, 0).await.unwrap();
    assert!(renewed.expire_time.unwrap() > old + secs(3000));
    // The renewal moved the due entry in its batch.
    let due = f.keys("sys/expire/due/").await;
    assert_eq!(
        due,
        [index::token_due_key(
            renewed.expire_time.unwrap(),
            &token.hash
        )]
    );
    // A stale entry at the old time (as one listed just before the renewal) revokes nothing.
    f.barrier
        .apply(vec![f.manager.token_due(&token.hash, old)])
        .await
        .unwrap();
    f.run(later(61)).await;
    assert!(f.token_stored(&token.hash).await);
    assert_eq!(f.keys("sys/expire/due/").await, due);
    f.run(later(3601)).await;
    assert!(!f.token_stored(&token.hash).await);
    // The next pass forgets the revoked token (it had no leases); nothing is left.
    f.run(later(3601)).await;
    assert!(f.keys("sys/expire/").await.is_empty());
}
