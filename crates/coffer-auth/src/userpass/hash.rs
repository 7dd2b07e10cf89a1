//! Password hashes: argon2id in PHC string form (`$argon2id$v=19$m=...`), computed off the
//! async workers and verified by the argon2 crate, whose comparison is constant-time.
//!
//! Each hash holds its own parameters, so raising them later keeps old hashes verifiable. A
//! login of a missing user verifies against a dummy hash made with the same parameters, so it
//! costs what a wrong password costs. At most a few hashes run at once: each needs `m` KiB of
//! memory, and a flood of logins must queue, not exhaust memory.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use coffer_sdk::Error;
use tokio::sync::{OnceCell, Semaphore};
use zeroize::Zeroizing;

/// A password as received: wiped from memory when dropped.
pub(crate) type Password = Zeroizing<String>;

/// Hashes and verifies the passwords of one mount.
pub(crate) struct Hasher {
    params: Params,
    /// A hash of a random password, verified in place of a missing user's.
    dummy: OnceCell<String>,
}

impl Hasher {
    /// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
    pub(crate) fn new() -> Self {
        Self::with_params(19 * 1024, 2, 1)
    }

    /// Hashes with `m_cost` KiB, `t_cost` passes and `p_cost` lanes (tests use small ones).
    pub(crate) fn with_params(m_cost: u32, t_cost: u32, p_cost: u32) -> Self {
        let params = Params::new(m_cost, t_cost, p_cost, None)
            .expect("argon2 parameters are constants within the crate's bounds");
        Hasher {
            params,
            dummy: OnceCell::new(),
        }
    }

    /// The PHC string of `password` under a fresh random salt.
    pub(crate) async fn hash(&self, password: Password) -> Result<String, Error> {
        let params = self.params.clone();
        run_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| Error::internal(format!("argon2 hashing failed: {e}")))
        })
        .await
    }

    /// Whether `password` matches `stored`; with no stored hash it verifies against the dummy
    /// and answers false, taking the same time.
    pub(crate) async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<bool, Error> {
        let (phc, real) = match stored {
            Some(phc) => (phc, true),
            None => (self.dummy().await?.clone(), false),
        };
        let matched = run_blocking(move || {
            let Ok(parsed) = PasswordHash::new(&phc) else {
                return Ok(false);
            };
            Ok(Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
        })
        .await?;
        Ok(matched && real)
    }

    async fn dummy(&self) -> Result<&String, Error> {
        self.dummy
            .get_or_try_init(|| async {
                let random = Zeroizing::new(uuid::Uuid::new_v4().to_string());
                self.hash(random).await
            })
            .await
    }
}

/// Whether `phc` is an argon2id hash the verifier can read (for `password_hash` writes).
pub(crate) fn is_argon2id(phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| h.algorithm.as_str() == "argon2id")
}

/// Runs `work` on the blocking pool, at most `permits()` at a time across all mounts.
async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let permit = permits()
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| Error::internal("password hashing semaphore closed"))?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
    .map_err(|e| Error::internal(format!("password hashing task failed: {e}")))?
}

fn permits() -> &'static Arc<Semaphore> {
    static PERMITS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(Semaphore::new(cores * 2))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Zeroizing::new(s.to_owned())
    }

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify() {
        let h = Hasher::with_params(64, 1, 1);
        let a = h.hash(pw("secret")).await.unwrap();
        let b = h.hash(pw("secret")).await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(!a.contains("secret"));
        assert_ne!(a, b, "each hash has its own salt");
        assert!(is_argon2id(&a));
        assert!(!is_argon2id("$2a$10$abcdefghijklmnopqrstuv"));
        assert!(h.verify(pw("secret"), Some(a.clone())).await.unwrap());
        assert!(!h.verify(pw("Secret"), Some(a)).await.unwrap());
        assert!(!h.verify(pw("secret"), None).await.unwrap());
        assert!(!h.verify(pw("x"), Some("garbage".into())).await.unwrap());
    }
}
