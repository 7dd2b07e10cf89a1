//! The logical request and response: what a client asked and what a mount answered, free of
//! any transport. HTTP, the CLI and tests all speak to the core in these terms.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a request does. HTTP maps GET to `Read` (or `List` with `?list=true`), POST/PUT to
/// `Update`, PATCH to `Patch`, DELETE to `Delete` and LIST to `List`. `Create` is the ACL
/// capability for writing a key that does not exist yet; backends that do not care treat it
/// as `Update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Read,
    List,
    Create,
    Update,
    Patch,
    Delete,
}

impl Operation {
    /// The lowercase name Vault uses in audit entries and capability lists.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::List => "list",
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Patch => "patch",
            Operation::Delete => "delete",
        }
    }

    /// `Create` and `Update` both write.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Operation::Create | Operation::Update | Operation::Patch
        )
    }
}

/// Who is asking: the facts of the caller's token a backend may use. It never holds the token
/// itself.
#[derive(Debug, Clone, Default)]
pub struct RequestAuth {
    /// The token's accessor: safe to show and to log.
    pub accessor: String,
    /// A stable, non-reversible id of the token (a keyed hash), e.g. to scope a cubbyhole.
    pub token_hash: String,
    pub display_name: String,
    pub policies: Vec<String>,
    pub entity_id: String,
    pub metadata: BTreeMap<String, String>,
}

/// One logical request, routed to a mount. Before routing `path` is the full API path (without
/// `/v1/`); a backend receives it relative to its mount.
#[derive(Debug, Clone)]
pub struct Request {
    /// A unique id, echoed as `request_id` and in audit entries.
    pub id: String,
    pub operation: Operation,
    pub path: String,
    /// The JSON body, merged with query parameters for reads and lists as Vault does.
    pub data: Map<String, Value>,
    /// The caller's token facts; `None` on unauthenticated paths.
    pub auth: Option<Arc<RequestAuth>>,
    /// The mount this request was routed to, e.g. `secret/` (empty before routing).
    pub mount_point: String,
    /// The mount's type, e.g. `kv`.
    pub mount_type: String,
    /// The mount's options (`version` for kv), as set by enable and tune.
    pub mount_options: Arc<BTreeMap<String, String>>,
    /// Seconds: the mount's effective default lease TTL (its tuned value, else the system's).
    pub default_lease_ttl: u64,
    /// Seconds: the mount's effective maximum lease TTL.
    pub max_lease_ttl: u64,
    pub remote_addr: Option<String>,
    /// Seconds; set when the client asked for the response to be wrapped
    /// (`X-Vault-Wrap-TTL`). Core wraps it; backends ignore it.
    pub wrap_ttl: Option<u64>,
}

impl Request {
    /// A request with no body and no caller, as tests and internal callers start one.
    pub fn new(operation: Operation, path: impl Into<String>) -> Self {
        Request {
            id: String::new(),
            operation,
            path: path.into(),
            data: Map::new(),
            auth: None,
            mount_point: String::new(),
            mount_type: String::new(),
            mount_options: Arc::default(),
            default_lease_ttl: 0,
            max_lease_ttl: 0,
            remote_addr: None,
            wrap_ttl: None,
        }
    }

    /// Sets the body.
    pub fn with_data(mut self, data: Map<String, Value>) -> Self {
        self.data = data;
        self
    }

    /// A string field of the body, if present and a string.
    pub fn get_str(&self, field: &str) -> Option<&str> {
        self.data.get(field).and_then(Value::as_str)
    }
}

/// A lease on a secret a mount issued; core registers it and calls the mount back to renew or
/// revoke it (OpenBao's `logical.Secret` with its `LeaseOptions`).
///
/// A mount fills `ttl`, `renewable` and, if it needs them later, `max_ttl` and
/// `internal_data`; core assigns `lease_id`. On `Backend::renew` and `Backend::revoke`, core
/// hands the lease back with `internal_data` as stored and `issue_time`, `expire_time` and
/// (on renew) `increment` filled in. Only the first three fields ever reach a client.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Lease {
    pub lease_id: String,
    /// Seconds until expiry.
    pub ttl: u64,
    pub renewable: bool,
    /// Seconds: a cap on the lease's whole life from its issue, below the mount's max lease
    /// TTL (0 = the mount's).
    #[serde(skip)]
    pub max_ttl: u64,
    /// What the mount needs to renew or revoke the secret later (pki: the serial), as OpenBao's
    /// `Secret.InternalData`: stored with the lease, never shown to the client.
    #[serde(skip)]
    pub internal_data: Map<String, Value>,
    /// When the lease was first issued (set by core on renew and revoke).
    #[serde(skip)]
    pub issue_time: Option<std::time::SystemTime>,
    /// When the lease expires as it stands (set by core on renew and revoke).
    #[serde(skip)]
    pub expire_time: Option<std::time::SystemTime>,
    /// Seconds: the extension the client asked for on renew (0 = none given).
    #[serde(skip)]
    pub increment: u64,
}

impl fmt::Debug for Lease {
    /// Internal data may name credentials (a database user): only its keys are printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("lease_id", &self.lease_id)
            .field("ttl", &self.ttl)
            .field("renewable", &self.renewable)
            .field("max_ttl", &self.max_ttl)
            .field(
                "internal_data",
                &self.internal_data.keys().collect::<Vec<_>>(),
            )
            .field("issue_time", &self.issue_time)
            .field("increment", &self.increment)
            .finish_non_exhaustive()
    }
}

/// The result of a login, or the token facts a token path returns. A backend fills the policies
/// and limits; core mints the token and fills `client_token` and `accessor`.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Auth {
    pub client_token: String,
    pub accessor: String,
    pub policies: Vec<String>,
    pub token_policies: Vec<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub lease_duration: u64,
    pub renewable: bool,
    pub entity_id: String,
    pub token_type: String,
    pub orphan: bool,
    pub num_uses: u64,
    /// A login's name for the token (`display_name` of the lookup), without the mount prefix
    /// that core adds.
    #[serde(skip)]
    pub display_name: String,
    /// Seconds; a periodic token's renewal period (0 = not periodic).
    #[serde(skip)]
    pub period: u64,
    /// Seconds; a hard cap on the token's life (0 = none).
    #[serde(skip)]
    pub explicit_max_ttl: u64,
    /// CIDRs the token may be used from (empty = anywhere).
    #[serde(skip)]
    pub bound_cidrs: Vec<String>,
    /// Whether core must not add the `default` policy.
    #[serde(skip)]
    pub no_default_policy: bool,
    /// The identity alias a login maps to (the user name, role id, `sub` claim...).
    #[serde(skip)]
    pub alias: Option<Alias>,
}

/// Who logged in, as the auth method knows them: core maps it to an identity entity.
#[derive(Debug, Clone, Default)]
pub struct Alias {
    pub name: String,
    pub metadata: BTreeMap<String, String>,
}

impl fmt::Debug for Auth {
    /// The token is a credential: it is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("client_token", &"[REDACTED]")
            .field("accessor", &self.accessor)
            .field("policies", &self.policies)
            .field("lease_duration", &self.lease_duration)
            .finish_non_exhaustive()
    }
}

/// What a mount answered.
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub data: Option<Map<String, Value>>,
    pub lease: Option<Lease>,
    pub auth: Option<Auth>,
    pub warnings: Vec<String>,
    /// Set by core when the response was wrapped: the only thing the client receives.
    pub wrap_info: Option<WrapInfo>,
    /// A status other than the default for the operation, as Vault's `logical.HTTPStatusCode`:
    /// `sys/health` answers 429/501/503 with a body, kv-v2 answers 404 with the metadata of a
    /// deleted version.
    pub http_status: Option<u16>,
}

impl Response {
    /// A response carrying `data`.
    pub fn with_data(data: Map<String, Value>) -> Self {
        Response {
            data: Some(data),
            ..Response::default()
        }
    }

    /// A response carrying the fields of a serializable value, or an internal error if it does
    /// not serialize to a JSON object.
    pub fn from_serialize(value: &impl Serialize) -> Result<Self, crate::Error> {
        match serde_json::to_value(value).map_err(crate::Error::internal)? {
            Value::Object(map) => Ok(Response::with_data(map)),
            _ => Err(crate::Error::internal("response is not a JSON object")),
        }
    }

    /// A response the HTTP layer sends as a bare body of `content_type` instead of the JSON
    /// envelope, as OpenBao's `logical.HTTPRawBody` (the body travels base64-encoded in
    /// `http_raw_body`, as Go marshals bytes).
    pub fn raw(content_type: &str, body: &[u8]) -> Self {
        use base64::Engine;
        let mut data = Map::new();
        data.insert("http_content_type".to_owned(), content_type.into());
        data.insert(
            "http_raw_body".to_owned(),
            base64::engine::general_purpose::STANDARD
                .encode(body)
                .into(),
        );
        data.insert("http_status_code".to_owned(), 200.into());
        Response::with_data(data)
    }

    /// Adds a warning shown to the client.
    pub fn warn(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }
}

/// What a client receives instead of a wrapped response: a single-use token that unwraps it.
#[derive(Clone, Default, Serialize)]
pub struct WrapInfo {
    pub token: String,
    pub accessor: String,
    pub ttl: u64,
    pub creation_time: String,
    pub creation_path: String,
    /// The accessor of a wrapped token, when a token was wrapped.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub wrapped_accessor: String,
}

impl fmt::Debug for WrapInfo {
    /// The wrapping token is a credential: it is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrapInfo")
            .field("token", &"[REDACTED]")
            .field("accessor", &self.accessor)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}
