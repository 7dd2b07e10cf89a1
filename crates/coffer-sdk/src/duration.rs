//! Durations as Vault accepts them in request fields: a number of seconds (JSON number or
//! digit string), or a Go-style duration string such as `90s`, `1h30m`, `1.5h`, plus `d` for days.

use serde_json::Value;

use crate::Error;

/// Parses a duration field into whole seconds (fractions are truncated, as Vault does).
pub fn parse_seconds(value: &Value) -> Result<u64, Error> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .ok_or_else(|| Error::invalid(format!("invalid duration: {n}"))),
        Value::String(s) => parse_str(s),
        _ => Err(Error::invalid(
            "invalid duration: expected a number or a string",
        )),
    }
}

/// Parses a duration string into whole seconds.
pub fn parse_str(input: &str) -> Result<u64, Error> {
    let s = input.trim();
    let invalid = || Error::invalid(format!("time: invalid duration {s:?}"));
    if s.is_empty() {
        return Ok(0);
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(secs);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        if num_len == 0 {
            return Err(invalid());
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| invalid())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(invalid()),
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    Ok(total as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_vault_duration_forms() {
        assert_eq!(parse_seconds(&json!(90)).unwrap(), 90);
        assert_eq!(parse_seconds(&json!("90")).unwrap(), 90);
        assert_eq!(parse_str("90s").unwrap(), 90);
        assert_eq!(parse_str("1h30m").unwrap(), 5400);
        assert_eq!(parse_str("1.5h").unwrap(), 5400);
        assert_eq!(parse_str("768h").unwrap(), 2_764_800);
        assert_eq!(parse_str("2d").unwrap(), 172_800);
        assert_eq!(parse_str("").unwrap(), 0);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_str("h").is_err());
        assert!(parse_str("10 parsecs").is_err());
        assert!(parse_str("-5s").is_err());
        assert!(parse_seconds(&json!(true)).is_err());
    }
}
