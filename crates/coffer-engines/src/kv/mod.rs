//! The kv secrets engine: v1 stores one JSON object per path (`v1.rs`); v2 keeps versions,
//! metadata and check-and-set (`v2/`). Which one a mount gets is decided once, at enable, by
//! its `version` option, as openbao `builtin/logical/kv/backend.go` `Factory` decides.

use std::sync::Arc;

use coffer_sdk::{Backend, BackendConfig, Factory};

pub mod v1;
pub mod v2;

/// Builds kv mounts: `options["version"] == "2"` (or mount type `kv-v2`) gives the versioned
/// engine, anything else the v1 passthrough.
pub fn kv_factory() -> Factory {
    Arc::new(|config: &BackendConfig| {
        let versioned = config.mount_type == "kv-v2"
            || config.options.get("version").map(String::as_str) == Some("2");
        let backend: Arc<dyn Backend> = if versioned {
            Arc::new(v2::KvV2::new())
        } else {
            Arc::new(v1::KvV1::new())
        };
        Ok(backend)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{req, MemStorage};
    use coffer_sdk::Operation;
    use serde_json::json;

    async fn is_versioned(config: BackendConfig) -> bool {
        let backend = kv_factory()(&config).unwrap();
        let storage = MemStorage::default();
        // Only v2 has a config path that answers a read.
        backend
            .handle(req(Operation::Read, "config", json!({})), &storage)
            .await
            .unwrap()
            .is_some_and(|r| r.data.is_some_and(|d| d.contains_key("max_versions")))
    }

    #[tokio::test]
    async fn factory_picks_the_version_from_options_and_type() {
        let mut config = BackendConfig {
            mount_type: "kv".to_owned(),
            ..BackendConfig::default()
        };
        assert!(!is_versioned(config.clone()).await);
        config.options.insert("version".to_owned(), "1".to_owned());
        assert!(!is_versioned(config.clone()).await);
        config.options.insert("version".to_owned(), "2".to_owned());
        assert!(is_versioned(config.clone()).await);
        let v2_type = BackendConfig {
            mount_type: "kv-v2".to_owned(),
            ..BackendConfig::default()
        };
        assert!(is_versioned(v2_type).await);
    }
}
