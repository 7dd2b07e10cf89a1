//! OpenBao's JSON envelope around a logical response.

use coffer_sdk::Response;
use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Serialize)]
struct Envelope<'a> {
    request_id: &'a str,
    lease_id: &'a str,
    renewable: bool,
    lease_duration: u64,
    data: Option<&'a Map<String, Value>>,
    wrap_info: Option<&'a coffer_sdk::WrapInfo>,
    warnings: Option<&'a [String]>,
    auth: Option<&'a coffer_sdk::Auth>,
}

/// Whether a response has nothing for the envelope: no data, auth, lease, wrap info or
/// warnings (a renewal answers with a lease alone, and that is a 200 with a body).
pub fn is_empty(resp: &Response) -> bool {
    resp.data.is_none()
        && resp.auth.is_none()
        && resp.lease.is_none()
        && resp.wrap_info.is_none()
        && resp.warnings.is_empty()
}

/// The envelope as bytes. For `sys/` paths the data fields are also copied to the top level,
/// as OpenBao does for its legacy clients.
pub fn to_json(request_id: &str, resp: &Response, sys_path: bool) -> Vec<u8> {
    let lease = resp.lease.as_ref();
    let envelope = Envelope {
        request_id,
        lease_id: lease.map_or("", |l| l.lease_id.as_str()),
        renewable: lease.is_some_and(|l| l.renewable),
        lease_duration: lease.map_or(0, |l| l.ttl),
        data: resp.data.as_ref(),
        wrap_info: resp.wrap_info.as_ref(),
        warnings: (!resp.warnings.is_empty()).then_some(resp.warnings.as_slice()),
        auth: resp.auth.as_ref(),
    };
    if sys_path {
        if let Some(data) = &resp.data {
            let mut top = data.clone();
            if let Ok(Value::Object(env)) = serde_json::to_value(&envelope) {
                top.extend(env);
            }
            return serde_json::to_vec(&top).unwrap_or_default();
        }
    }
    serde_json::to_vec(&envelope).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_sdk::Lease;

    #[test]
    fn a_lease_alone_is_an_answer_with_its_id_duration_and_renewability() {
        let resp = Response {
            lease: Some(Lease {
                lease_id: "db/creds/ro/abc".into(),
                ttl: 600,
                renewable: true,
                ..Lease::default()
            }),
            ..Response::default()
        };
        assert!(!is_empty(&resp));
        assert!(is_empty(&Response::default()));
        let body: Value = serde_json::from_slice(&to_json("req", &resp, false)).unwrap();
        assert_eq!(body["lease_id"], "db/creds/ro/abc");
        assert_eq!(body["lease_duration"], 600);
        assert_eq!(body["renewable"], true);
        assert_eq!(body["data"], Value::Null);
    }
}
