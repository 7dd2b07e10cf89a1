//! Field shapes OpenBao's auth methods share and the sdk's `Fields` lacks: comma-separated
//! string lists (`TypeCommaStringSlice`), policy lists as `policyutil.ParsePolicies` cleans
//! them, and CIDR lists with their membership and subset checks.

use std::net::IpAddr;

use coffer_sdk::framework::weak_string;
use coffer_sdk::Error;
use ipnet::IpNet;
use serde_json::{Map, Value};

/// A `TypeCommaStringSlice` field: a JSON array, or a string split on commas; items trimmed,
/// empty items dropped. `None` when the field is absent.
pub(crate) fn string_list(
    data: &Map<String, Value>,
    name: &str,
) -> Result<Option<Vec<String>>, Error> {
    let items = match data.get(name) {
        None => return Ok(None),
        Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => s.split(',').map(str::to_owned).collect(),
        Some(Value::Array(values)) => values
            .iter()
            .map(|v| weak_string(v).map_err(|detail| conversion(name, &detail)))
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => vec![weak_string(other).map_err(|detail| conversion(name, &detail))?],
    };
    Ok(Some(
        items
            .into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
    ))
}

/// Policy names as OpenBao keeps them: lowercased, trimmed, deduplicated and sorted.
pub(crate) fn policies(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = list.into_iter().map(|p| p.trim().to_lowercase()).collect();
    out.retain(|p| !p.is_empty());
    out.sort();
    out.dedup();
    out
}

/// Checks every entry is an address or a CIDR block (`parseutil.ParseAddrs`); `what` names the
/// field in the error.
pub(crate) fn validate_cidrs(list: &[String], what: &str) -> Result<(), Error> {
    for item in list {
        if parse_net(item).is_none() {
            return Err(Error::invalid(format!(
                "failed to parse {what}: invalid CIDR address: {item}"
            )));
        }
    }
    Ok(())
}

/// Whether `remote` (an IP, or `ip:port`) lies in one of `cidrs`; an empty list allows any
/// address, an unknown address none.
pub(crate) fn cidrs_allow(cidrs: &[String], remote: Option<&str>) -> bool {
    if cidrs.is_empty() {
        return true;
    }
    let Some(ip) = remote.and_then(parse_ip) else {
        return false;
    };
    cidrs
        .iter()
        .filter_map(|c| parse_net(c))
        .any(|net| net.contains(&ip))
}

/// Whether every block of `inner` lies within some block of `outer` (an empty `outer` contains
/// everything), as approle requires of a secret ID's CIDRs against its role's.
pub(crate) fn cidrs_subset(outer: &[String], inner: &[String]) -> bool {
    if outer.is_empty() {
        return true;
    }
    let outer: Vec<IpNet> = outer.iter().filter_map(|c| parse_net(c)).collect();
    inner.iter().all(|c| match parse_net(c) {
        Some(net) => outer.iter().any(|o| o.contains(&net)),
        None => false,
    })
}

/// A CIDR block, or a single address as a /32 (/128).
fn parse_net(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

fn parse_ip(remote: &str) -> Option<IpAddr> {
    remote
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| remote.parse())
        .ok()
}

fn conversion(name: &str, detail: &str) -> Error {
    Error::invalid(format!(
        "error converting input for field {name:?}: {detail}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn comma_lists_and_policies_parse_like_openbao() {
        let body = json!({"a": " x, y ,,z", "b": ["p", 1], "c": null});
        let data = body.as_object().unwrap();
        assert_eq!(string_list(data, "a").unwrap().unwrap(), ["x", "y", "z"]);
        assert_eq!(string_list(data, "b").unwrap().unwrap(), ["p", "1"]);
        assert!(string_list(data, "c").unwrap().unwrap().is_empty());
        assert!(string_list(data, "absent").unwrap().is_none());
        assert_eq!(
            policies(vec!["B".into(), "a".into(), " b ".into(), String::new()]),
            ["a", "b"]
        );
    }

    #[test]
    fn cidr_checks() {
        let nets = vec!["10.0.0.0/8".to_owned(), "192.168.1.7".to_owned()];
        assert!(cidrs_allow(&nets, Some("10.2.3.4")));
        assert!(cidrs_allow(&nets, Some("192.168.1.7:5555")));
        assert!(!cidrs_allow(&nets, Some("127.0.0.1")));
        assert!(!cidrs_allow(&nets, None));
        assert!(cidrs_allow(&[], None));
        assert!(cidrs_subset(&nets, &["10.1.0.0/16".to_owned()]));
        assert!(!cidrs_subset(&nets, &["127.0.0.1/32".to_owned()]));
        assert!(cidrs_subset(&[], &["127.0.0.1/32".to_owned()]));
        assert!(validate_cidrs(&nets, "x").is_ok());
        assert_eq!(
            validate_cidrs(&["nope".to_owned()], "CIDR blocks")
                .unwrap_err()
                .to_string(),
            "failed to parse CIDR blocks: invalid CIDR address: nope"
        );
    }
}
