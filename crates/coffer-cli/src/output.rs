//! Rendering exactly as the `bao` CLI renders: Go-style JSON (`json.MarshalIndent` with two
//! spaces, sorted map keys, HTML characters escaped), columnized `Key/Value` tables with the
//! `♨` delimiter and `n/a` for empty cells, Go `%v` formatting of values, human durations for
//! keys that look like TTLs, and the min-raggedness word wrap of `kr/text` used for messages.
//!
//! Copies OpenBao `internal/command/format.go`, `kv_helpers.go` and `base_helpers.go`. This module
//! never makes a request; it only turns values into text.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::client::Secret;
use crate::Env;

/// The column delimiter OpenBao hopes never appears in a secret.
pub(crate) const HOPE_DELIM: &str = "♨";
/// The widest line of wrapped help and messages (`maxLineLength` in OpenBao's `base.go`).
const MAX_LINE_LENGTH: usize = 78;

/// `-format`: the two formats coffer prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable columns (the default).
    Table,
    /// The JSON the `bao` CLI prints.
    Json,
}

impl Format {
    /// Parses a `-format` value; `None` for a format coffer does not print.
    pub fn parse(s: &str) -> Option<Format> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "table" => Some(Format::Table),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// Serializes `value` as Go's `json.MarshalIndent(v, "", "  ")` does.
pub(crate) fn go_json<T: Serialize + ?Sized>(value: &T) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_owned());
    escape_html(&text)
}

/// Go's encoder escapes `<`, `>`, `&`, U+2028 and U+2029; in JSON text they can only occur inside
/// strings, so replacing them everywhere is exact.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// A JSON value serialized with its object keys sorted, as Go marshals a map, whatever order
/// the `serde_json::Map` in use keeps.
pub(crate) struct Sorted<'a>(pub &'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(m) => SortedMap(m).serialize(s),
            Value::Array(a) => {
                let mut seq = s.serialize_seq(Some(a.len()))?;
                for v in a {
                    seq.serialize_element(&Sorted(v))?;
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
}

/// A JSON object serialized with sorted keys.
pub(crate) struct SortedMap<'a>(pub &'a Map<String, Value>);

impl Serialize for SortedMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut entries: Vec<(&String, &Value)> = self.0.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let mut map = s.serialize_map(Some(entries.len()))?;
        for (k, v) in entries {
            map.serialize_entry(k, &Sorted(v))?;
        }
        map.end()
    }
}

/// Go's `%v` of a value decoded from JSON.
pub(crate) fn fmt_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(fmt_value).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", k, fmt_value(&m[k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// Go's `%q` of a `[]string` (`["a" "b"]`; `[]` for none).
pub(crate) fn fmt_quoted_list(list: Option<&Vec<String>>) -> String {
    let parts: Vec<String> = list
        .map(|l| l.iter().map(|s| go_quote(s)).collect())
        .unwrap_or_default();
    format!("[{}]", parts.join(" "))
}

fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether a key "looks like" a TTL, so a table prints its integer value as a duration.
pub(crate) fn looks_like_duration(k: &str) -> bool {
    k == "period"
        || k.ends_with("_period")
        || k == "ttl"
        || k.ends_with("_ttl")
        || k == "duration"
        || k.ends_with("_duration")
        || k == "lease_max"
        || k == "ttl_max"
}

/// `humanDuration`: Go's `time.Duration.String()` of whole seconds, without trailing `0s`/`0m`.
pub(crate) fn human_duration(secs: i64) -> String {
    if secs == 0 {
        return "0s".to_owned();
    }
    let mut s = go_duration(secs);
    if s.ends_with("m0s") {
        s.truncate(s.len() - 2);
    }
    if let Some(idx) = s.find("h0m") {
        if idx > 0 {
            s = format!("{}{}", &s[..idx + 1], &s[idx + 3..]);
        }
    }
    s
}

/// Go's `time.Duration.String()` for a whole number of seconds.
pub(crate) fn go_duration(secs: i64) -> String {
    if secs == 0 {
        return "0s".to_owned();
    }
    let sign = if secs < 0 { "-" } else { "" };
    let a = secs.unsigned_abs();
    let (h, m, s) = (a / 3600, (a % 3600) / 60, a % 60);
    if h > 0 {
        format!("{sign}{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{sign}{m}m{s}s")
    } else {
        format!("{sign}{s}s")
    }
}

/// Parses a duration flag as bao's `DurationVar` does: a bare integer is seconds, otherwise
/// Go's `time.ParseDuration` syntax (`1h30m`, `90s`, `1.5h`). Returns whole seconds.
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let bad = || format!("time: invalid duration {}", go_quote(s));
    if s.is_empty() {
        return Ok(0);
    }
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(0);
    }
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let num: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += num * factor;
        rest = &rest[unit_end..];
    }
    let secs = total.trunc() as i64;
    Ok(if neg { -secs } else { secs })
}

/// Go's `time.Time.String()` of an RFC 3339 timestamp (`2006-01-02 15:04:05.999999999 -0700
/// MST`), as bao prints `wrapping_token_creation_time`; text that is not a timestamp is kept.
pub(crate) fn go_time_string(rfc3339: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(rfc3339) else {
        return rfc3339.to_owned();
    };
    let mut out = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    let offset = t.format("%z").to_string();
    // A parsed offset has no zone name: Go prints UTC for zero and the offset again otherwise.
    let zone = if t.offset().local_minus_utc() == 0 {
        "UTC".to_owned()
    } else {
        offset.clone()
    };
    format!("{out} {offset} {zone}")
}

/// `humanDurationInt`: integers become durations; anything else prints as it is.
pub(crate) fn human_duration_value(v: &Value) -> String {
    match v.as_i64() {
        Some(i) => human_duration(i),
        None => fmt_value(v),
    }
}

/// `columnize.Format` with OpenBao's settings: split on `delim`, trim cells, `n/a` for empty
/// cells, columns padded to the widest cell (in characters) and glued with four spaces; the
/// last cell of a line is not padded.
pub(crate) fn columnize(lines: &[String], delim: &str) -> String {
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|line| {
            line.split(delim)
                .map(|cell| {
                    let cell = cell.trim();
                    if cell.is_empty() {
                        "n/a".to_owned()
                    } else {
                        cell.to_owned()
                    }
                })
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = Vec::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            let w = cell.chars().count();
            if widths.len() <= i {
                widths.push(w);
            } else if widths[i] < w {
                widths[i] = w;
            }
        }
    }
    let mut out = String::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if i == row.len() - 1 {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                let pad = widths[i] - cell.chars().count();
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str("    ");
            }
        }
        out.push('\n');
    }
    out.pop();
    out
}

/// `tableOutput`: inserts a dashed underline below the header line, then columnizes.
pub(crate) fn table_output(mut lines: Vec<String>, delim: &str) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let underline: Vec<String> = lines[0]
        .split(delim)
        .map(|h| "-".repeat(h.trim().len()))
        .collect();
    lines.insert(1, underline.join(delim));
    columnize(&lines, delim)
}

/// The `Key/Value` rows of a map, keys sorted, TTL-like integers as durations (`OutputMap`).
fn map_rows(data: &Map<String, Value>) -> Vec<String> {
    let mut keys: Vec<&String> = data.keys().collect();
    keys.sort();
    keys.into_iter()
        .map(|k| {
            let v = &data[k];
            let shown = if looks_like_duration(k) {
                human_duration_value(v)
            } else {
                fmt_value(v)
            };
            format!("{k} {HOPE_DELIM} {shown}")
        })
        .collect()
}

/// The table of a map, or `None` when it is empty (OpenBao then prints nothing).
pub(crate) fn map_table(data: &Map<String, Value>) -> Option<String> {
    let rows = map_rows(data);
    if rows.is_empty() {
        return None;
    }
    let mut lines = vec![format!("Key{HOPE_DELIM}Value")];
    lines.extend(rows);
    Some(table_output(lines, HOPE_DELIM))
}

/// The table `OutputSecret` prints for a secret, or `None` when there is nothing to show.
pub(crate) fn secret_table(secret: &Secret) -> Option<String> {
    let mut out: Vec<String> = Vec::new();
    let d = HOPE_DELIM;
    if secret.lease_duration > 0 {
        if !secret.lease_id.is_empty() {
            out.push(format!("lease_id {d} {}", secret.lease_id));
            out.push(format!(
                "lease_duration {d} {}",
                human_duration(secret.lease_duration)
            ));
            out.push(format!("lease_renewable {d} {}", secret.renewable));
        } else {
            out.push(format!(
                "refresh_interval {d} {}",
                human_duration(secret.lease_duration)
            ));
        }
    }
    if let Some(auth) = &secret.auth {
        out.push(format!("token {d} {}", auth.client_token));
        out.push(format!("token_accessor {d} {}", auth.accessor));
        if auth.lease_duration == 0 {
            out.push(format!("token_duration {d} ∞"));
        } else {
            out.push(format!(
                "token_duration {d} {}",
                human_duration(auth.lease_duration)
            ));
        }
        out.push(format!("token_renewable {d} {}", auth.renewable));
        out.push(format!(
            "token_policies {d} {}",
            fmt_quoted_list(auth.token_policies.as_ref())
        ));
        out.push(format!(
            "identity_policies {d} {}",
            fmt_quoted_list(auth.identity_policies.as_ref())
        ));
        out.push(format!(
            "policies {d} {}",
            fmt_quoted_list(auth.policies.as_ref())
        ));
        if let Some(meta) = &auth.metadata {
            for (k, v) in meta {
                out.push(format!("token_meta_{k} {d} {}", fmt_value(v)));
            }
        }
    }
    if let Some(w) = &secret.wrap_info {
        out.push(format!("wrapping_token: {d} {}", w.token));
        out.push(format!("wrapping_accessor: {d} {}", w.accessor));
        out.push(format!("wrapping_token_ttl: {d} {}", human_duration(w.ttl)));
        out.push(format!(
            "wrapping_token_creation_time: {d} {}",
            go_time_string(&w.creation_time)
        ));
        out.push(format!(
            "wrapping_token_creation_path: {d} {}",
            w.creation_path
        ));
        if !w.wrapped_accessor.is_empty() {
            out.push(format!("wrapped_accessor: {d} {}", w.wrapped_accessor));
        }
    }
    if let Some(data) = &secret.data {
        out.extend(map_rows(data));
    }
    if out.is_empty() {
        return None;
    }
    out.insert(0, format!("Key{HOPE_DELIM}Value"));
    Some(table_output(out, HOPE_DELIM))
}

/// The `Keys` table of a list response (keys sorted), or `None` for an empty list.
pub(crate) fn list_table(keys: &[Value]) -> Result<Option<String>, String> {
    if keys.is_empty() {
        return Ok(None);
    }
    let mut names = Vec::with_capacity(keys.len());
    for k in keys {
        match k.as_str() {
            Some(s) => names.push(s.to_owned()),
            None => return Err(format!("{} is not a string", fmt_value(k))),
        }
    }
    names.sort();
    let mut lines = vec!["Keys".to_owned()];
    lines.extend(names);
    Ok(Some(table_output(lines, HOPE_DELIM)))
}

/// `padEqualSigns`: a section header centred in equal signs over `total_len` columns.
pub(crate) fn pad_equal_signs(header: &str, total_len: usize) -> String {
    let mut signs = total_len as i64 - (header.len() as i64 + 2);
    if signs <= 0 {
        signs = 4;
    }
    if signs % 2 != 0 {
        signs += 1;
    }
    let side = "=".repeat((signs / 2) as usize);
    format!("{side} {header} {side}")
}

/// `getHeaderForMap`: a header as wide as the table of `data` will be.
pub(crate) fn header_for_map(header: &str, data: &Map<String, Value>) -> String {
    let max_key = data.keys().map(|k| k.len()).max().unwrap_or(0);
    pad_equal_signs(header, max_key + 4 + 5)
}

/// `wrapAtLengthWithPadding`: kr/text's minimum-raggedness wrap at 78 - `pad` columns, each
/// line indented by `pad` spaces. Newlines in `s` become spaces, as in kr/text.
pub(crate) fn wrap_at_length(s: &str, pad: usize) -> String {
    let lim = MAX_LINE_LENGTH.saturating_sub(pad) as i64;
    let flat = s.trim().replace('\n', " ");
    let words: Vec<&str> = flat.split(' ').collect();
    let n = words.len();
    let lens: Vec<i64> = words.iter().map(|w| w.chars().count() as i64).collect();
    // length(i, j): words i..=j joined by single spaces.
    let length = |i: usize, j: usize| -> i64 { lens[i..=j].iter().sum::<i64>() + (j - i) as i64 };
    const PENALTY: i64 = 100_000;
    let mut nbrk = vec![0usize; n];
    let mut cost = vec![i64::from(i32::MAX); n];
    for i in (0..n).rev() {
        if length(i, n - 1) <= lim {
            cost[i] = 0;
            nbrk[i] = n;
        } else {
            for j in i + 1..n {
                let len = length(i, j - 1);
                let d = lim - len;
                let mut c = d * d + cost[j];
                if len > lim {
                    c += PENALTY;
                }
                if c < cost[i] {
                    cost[i] = c;
                    nbrk[i] = j;
                }
            }
        }
    }
    let mut lines = Vec::new();
    let mut i = 0;
    while i < n {
        let end = nbrk[i].max(i + 1);
        lines.push(format!("{}{}", " ".repeat(pad), words[i..end].join(" ")));
        i = end;
    }
    lines.join("\n")
}

/// `printWarnings`: a secret's warnings on stderr, before its table.
pub(crate) fn print_warnings(env: &mut Env<'_>, secret: &Secret) {
    let Some(warnings) = &secret.warnings else {
        return;
    };
    if warnings.is_empty() {
        return;
    }
    env.warn("WARNING! The following warnings were returned from OpenBao:\n");
    for w in warnings {
        env.warn(&wrap_at_length(&format!("* {w}"), 2));
        env.warn("");
    }
}

/// `OutputSecret`: the whole secret as JSON, or its warnings and table.
pub(crate) fn output_secret(env: &mut Env<'_>, secret: &Secret) -> i32 {
    match env.format {
        Format::Json => {
            let text = go_json(secret);
            env.out(&text);
        }
        Format::Table => {
            print_warnings(env, secret);
            if let Some(t) = secret_table(secret) {
                env.out(&t);
            }
        }
    }
    0
}

/// Prints a failed write's error, then whatever secret came with it (bao shows its warnings).
pub(crate) fn error_with_secret(env: &mut Env<'_>, message: &str, err: &crate::client::Error) {
    env.error(message);
    if let Some(secret) = err.secret() {
        output_secret(env, secret);
    }
}

/// `OutputData` of a map: sorted JSON, or the `Key/Value` table.
pub(crate) fn output_map(env: &mut Env<'_>, data: &Map<String, Value>) -> i32 {
    match env.format {
        Format::Json => {
            let text = go_json(&SortedMap(data));
            env.out(&text);
        }
        Format::Table => {
            if let Some(t) = map_table(data) {
                env.out(&t);
            }
        }
    }
    0
}

/// `OutputList` of a list secret: the JSON array of keys, or the `Keys` table.
pub(crate) fn output_list(env: &mut Env<'_>, secret: &Secret) -> i32 {
    let keys = secret
        .data
        .as_ref()
        .and_then(|d| d.get("keys"))
        .cloned()
        .unwrap_or(Value::Null);
    match env.format {
        Format::Json => {
            let text = go_json(&Sorted(&keys));
            env.out(&text);
            0
        }
        Format::Table => {
            print_warnings(env, secret);
            let list = keys.as_array().cloned().unwrap_or_default();
            match list_table(&list) {
                Ok(Some(t)) => {
                    env.out(&t);
                    0
                }
                Ok(None) => 0,
                Err(e) => {
                    env.error(&format!("Could not parse output: {e}"));
                    1
                }
            }
        }
    }
}

/// `PrintRawField` for a secret: one field, bare in a table, as JSON otherwise.
pub(crate) fn print_raw_field(env: &mut Env<'_>, secret: &Secret, field: &str) -> i32 {
    let val = raw_secret_field(secret, field);
    print_raw_value(env, Some(secret), val, field, "secret")
}

/// `PrintRawField` for a map.
pub(crate) fn print_raw_map_field(
    env: &mut Env<'_>,
    data: &Map<String, Value>,
    field: &str,
) -> i32 {
    let val = data.get(field).cloned().filter(|v| !v.is_null());
    print_raw_value(env, None, val, field, "map")
}

fn print_raw_value(
    env: &mut Env<'_>,
    secret: Option<&Secret>,
    val: Option<Value>,
    field: &str,
    type_name: &str,
) -> i32 {
    let Some(val) = val else {
        env.error(&format!(
            "Field {} not present in {type_name}",
            go_quote(field)
        ));
        return 1;
    };
    match env.format {
        Format::Table => {
            if let Some(secret) = secret {
                print_warnings(env, secret);
            }
            let text = fmt_value(&val);
            env.raw(&text);
        }
        Format::Json => {
            let text = go_json(&Sorted(&val));
            env.raw(&text);
        }
    }
    0
}

/// `RawSecretField`: where `-field=NAME` finds its value in a secret.
fn raw_secret_field(secret: &Secret, field: &str) -> Option<Value> {
    let data_field = |f: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(f))
            .cloned()
            .filter(|v| !v.is_null())
    };
    if let Some(auth) = &secret.auth {
        let v = match field {
            "token" | "token_id" => Value::from(auth.client_token.clone()),
            "token_accessor" | "accessor" => Value::from(auth.accessor.clone()),
            "token_duration" => Value::from(auth.lease_duration),
            "token_renewable" => Value::from(auth.renewable),
            "token_policies" => serde_json::to_value(&auth.token_policies).ok()?,
            "identity_policies" => serde_json::to_value(&auth.identity_policies).ok()?,
            "policies" => serde_json::to_value(&auth.policies).ok()?,
            _ => return data_field(field),
        };
        return Some(v).filter(|v| !v.is_null());
    }
    let v = match field {
        "lease_duration" | "refresh_interval" => Value::from(secret.lease_duration),
        "lease_id" => Value::from(secret.lease_id.clone()),
        "request_id" => Value::from(secret.request_id.clone()),
        "renewable" => Value::from(secret.renewable),
        "data" => match data_field("data") {
            Some(v) => v,
            None => secret
                .data
                .as_ref()
                .map(|d| Value::Object(d.clone()))
                .unwrap_or(Value::Null),
        },
        _ => return data_field(field),
    };
    Some(v).filter(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_print_as_openbao_prints_them() {
        assert_eq!(human_duration(0), "0s");
        assert_eq!(human_duration(30), "30s");
        assert_eq!(human_duration(300), "5m");
        assert_eq!(human_duration(3600), "1h");
        assert_eq!(human_duration(2_764_800), "768h");
        assert_eq!(human_duration(3661), "1h1m1s");
        assert_eq!(human_duration(3660), "1h1m");
        assert_eq!(human_duration(3601), "1h1s");
        assert_eq!(go_duration(3600), "1h0m0s");
    }

    #[test]
    fn creation_times_print_as_go_prints_them() {
        assert_eq!(
            go_time_string("2026-11-27T19:38:29.71981965Z"),
            "2026-11-27 19:38:29.71981965 +0000 UTC"
        );
        assert_eq!(
            go_time_string("2026-11-27T19:38:29Z"),
            "2026-11-27 19:38:29 +0000 UTC"
        );
        assert_eq!(
            go_time_string("2026-11-27T19:38:29.5+01:00"),
            "2026-11-27 19:38:29.5 +0100 +0100"
        );
        assert_eq!(go_time_string("not a time"), "not a time");
    }

    #[test]
    fn duration_flags_parse_like_bao() {
        assert_eq!(parse_duration("3600").unwrap(), 3600);
        assert_eq!(parse_duration("1h30m").unwrap(), 5400);
        assert_eq!(parse_duration("1.5h").unwrap(), 5400);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert_eq!(parse_duration("-1s").unwrap(), -1);
        assert!(parse_duration("1x").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn key_value_table_matches_bao_layout() {
        let data = json!({"b": "3", "a": "1", "deletion_time": "", "n": null});
        let t = map_table(data.as_object().unwrap()).unwrap();
        assert_eq!(
            t,
            "Key              Value\n\
             ---              -----\n\
             a                1\n\
             b                3\n\
             deletion_time    n/a\n\
             n                <nil>"
        );
    }

    #[test]
    fn ttl_like_keys_print_as_durations() {
        let data = json!({"ttl": 3600, "creation_ttl": 0, "policies": ["default", "root"]});
        let t = map_table(data.as_object().unwrap()).unwrap();
        assert!(t.contains("ttl             1h"), "{t}");
        assert!(t.contains("creation_ttl    0s"), "{t}");
        assert!(t.contains("policies        [default root]"), "{t}");
    }

    #[test]
    fn headers_are_padded_like_bao() {
        assert_eq!(
            pad_equal_signs("Secret Path", "secret/data/foo".len()),
            "= Secret Path ="
        );
        assert_eq!(
            pad_equal_signs("Secret Path", "secret/data/dir/x".len()),
            "== Secret Path =="
        );
        let data = json!({"a": 1, "b": 2});
        assert_eq!(
            header_for_map("Data", data.as_object().unwrap()),
            "== Data =="
        );
        let meta = json!({"custom_metadata": null, "version": 1});
        assert_eq!(
            header_for_map("Metadata", meta.as_object().unwrap()),
            "======= Metadata ======="
        );
    }

    #[test]
    fn json_is_go_shaped() {
        let v = json!({"z": 1, "a": {"y": "<&>", "b": []}, "e": {}});
        assert_eq!(
            go_json(&Sorted(&v)),
            "{\n  \"a\": {\n    \"b\": [],\n    \"y\": \"\\u003c\\u0026\\u003e\"\n  },\n  \"e\": {},\n  \"z\": 1\n}"
        );
    }

    #[test]
    fn go_value_formatting() {
        assert_eq!(
            fmt_value(&json!({"b": [1, "x"], "a": true})),
            "map[a:true b:[1 x]]"
        );
        assert_eq!(
            fmt_quoted_list(Some(&vec!["default".into(), "root".into()])),
            "[\"default\" \"root\"]"
        );
        assert_eq!(fmt_quoted_list(None), "[]");
    }

    #[test]
    fn list_table_sorts_keys() {
        let t = list_table(&[json!("foo"), json!("dir/")]).unwrap().unwrap();
        assert_eq!(t, "Keys\n----\ndir/\nfoo");
        assert!(list_table(&[json!(1)]).is_err());
    }

    #[test]
    fn wrap_matches_bao_login_message() {
        let s = wrap_at_length(
            "Success! You are now authenticated. The token information displayed below is already stored in the token helper. You do NOT need to run \"bao login\" again. Future OpenBao requests will automatically use this token.",
            0,
        );
        assert_eq!(
            s,
            "Success! You are now authenticated. The token information displayed below is\nalready stored in the token helper. You do NOT need to run \"bao login\" again.\nFuture OpenBao requests will automatically use this token."
        );
        assert_eq!(wrap_at_length("* short", 2), "  * short");
    }
}
