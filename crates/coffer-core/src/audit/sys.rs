//! The audit endpoints of the system backend: `sys/audit` (list), `sys/audit/<path>` (enable and
//! disable: refused as OpenBao 2.7 refuses them unless the server opted in),
//! `sys/audit-hash/<path>` (hash a value as the device would), and `sys/audit-chain/<path>`
//! (root only, beyond OpenBao: the chain key and head to verify the device's log).

use coffer_sdk::{Error, Operation, Request, Response};
use serde_json::{json, Map, Value};

use super::AuditDeviceConfig;
use crate::core::Core;

/// Serves `sys/audit*`; `req.path` is relative to `sys/`.
pub async fn handle(core: &Core, req: Request) -> Result<Option<Response>, Error> {
    let op = req.operation;
    let write = matches!(op, Operation::Create | Operation::Update);
    let path = req.path.as_str();
    let (head, rest) = match path.split_once('/') {
        Some((h, r)) => (h, r.trim_matches('/')),
        None => (path, ""),
    };
    let broker = core.audit();
    match (head, rest.is_empty()) {
        ("audit", true) if matches!(op, Operation::Read | Operation::List) => {
            let devices: Map<String, Value> = broker
                .list()
                .into_iter()
                .map(|c| (c.path.clone(), device_json(&c)))
                .collect();
            Ok(Some(Response::with_data(devices)))
        }
        ("audit", false) if write => {
            let device_type = req
                .get_str("type")
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            let options = match req.data.get("options") {
                None | Some(Value::Null) => Default::default(),
                Some(Value::Object(m)) => m
                    .iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (k.clone(), v)
                    })
                    .collect(),
                Some(_) => return Err(Error::invalid("options must be a map")),
            };
            let config = AuditDeviceConfig {
                device_type: device_type.unwrap_or_default(),
                path: rest.to_owned(),
                description: req.get_str("description").unwrap_or_default().to_owned(),
                options,
            };
            broker.enable_device(core.barrier(), config).await?;
            Ok(None)
        }
        ("audit", false) if op == Operation::Delete => {
            broker.disable_device(core.barrier(), rest).await?;
            Ok(None)
        }
        ("audit-hash", false) if write => {
            let input = req.get_str("input").unwrap_or_default();
            if input.is_empty() {
                return Err(Error::invalid("the \"input\" parameter is empty"));
            }
            let hash = broker.hash(rest, input)?;
            Ok(Some(Response::with_data(data(json!({ "hash": hash })))))
        }
        ("audit-chain", false) if op == Operation::Read => {
            // The chain key verifies the log, and whoever holds it could also rewrite it: root only.
            let is_root = req
                .auth
                .as_ref()
                .is_some_and(|a| a.policies.iter().any(|p| p == "root"));
            if !is_root {
                return Err(Error::PermissionDenied);
            }
            Ok(Some(Response::from_serialize(&broker.export_chain(rest)?)?))
        }
        ("audit" | "audit-hash" | "audit-chain", _) => Err(Error::UnsupportedOperation),
        _ => Err(Error::UnsupportedPath(format!("sys/{path}"))),
    }
}

/// A device as `sys/audit` shows it (OpenBao's fields).
fn device_json(c: &AuditDeviceConfig) -> Value {
    json!({
        "type": c.device_type,
        "description": c.description,
        "options": c.options,
        "path": c.path,
        "local": false,
    })
}

fn data(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
