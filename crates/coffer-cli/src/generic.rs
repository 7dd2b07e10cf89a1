//! `read`, `write`, `list` and `delete`: raw access to any API path, plus the `k=v` argument
//! parser every data-taking verb shares (`k=v`, `k=@file`, `k=-` for stdin, a lone `-` or
//! `@file` for a JSON object, repeated keys becoming lists), as OpenBao's `kvbuilder` parses.
//!
//! Copies OpenBao `internal/command/{read,write,list,delete}.go`.

use std::io::Read;

use serde_json::{Map, Value};

use crate::client::Secret;
use crate::output::{self, Format};
use crate::{check_args, sanitize_path, Env};

/// `read PATH [K=V...]`
#[derive(clap::Args, Debug, Default)]
pub struct ReadArgs {
    /// Print only the named field
    #[arg(long)]
    pub field: Option<String>,
    /// PATH, then optional K=V query parameters
    #[arg(allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// `write PATH [K=V...]`
#[derive(clap::Args, Debug, Default)]
pub struct WriteArgs {
    /// Allow the operation to continue with no key=value pairs
    #[arg(long, short = 'f')]
    pub force: bool,
    /// Print only the named field
    #[arg(long)]
    pub field: Option<String>,
    /// PATH, then K=V data (K=@file, K=-, or - / @file for a JSON object)
    #[arg(allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// `list PATH`
#[derive(clap::Args, Debug, Default)]
pub struct ListArgs {
    /// List keys after this one (paginated list)
    #[arg(long)]
    pub after: Option<String>,
    /// At most this many keys (paginated list)
    #[arg(long)]
    pub limit: Option<i64>,
    /// PATH
    pub args: Vec<String>,
}

/// `delete PATH [K=V...]`
#[derive(clap::Args, Debug, Default)]
pub struct DeleteArgs {
    /// Print only the named field
    #[arg(long)]
    pub field: Option<String>,
    /// PATH, then optional K=V query parameters
    #[arg(allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// Parses `k=v` arguments as OpenBao's `kvbuilder` does: `k=@file` reads a file, `k=\@x` is
/// the literal `@x`, `k=-` reads stdin (once), a lone `-` or `@file` merges a JSON object, and a
/// repeated key collects its values into a list.
pub fn parse_args_data(
    input: &mut dyn Read,
    args: &[String],
) -> Result<Map<String, Value>, String> {
    let mut result = Map::new();
    let mut stdin_used = false;
    for raw in args {
        if raw.is_empty() {
            continue;
        }
        let Some((key, value)) = raw.split_once('=') else {
            if raw == "-" {
                if stdin_used {
                    return Err("stdin already consumed".to_owned());
                }
                stdin_used = true;
                merge_json(&mut result, input)?;
                continue;
            }
            if let Some(path) = raw.strip_prefix('@') {
                let mut f = std::fs::File::open(path)
                    .map_err(|e| format!("open {path}: {}", io_text(&e)))?;
                merge_json(&mut result, &mut f)?;
                continue;
            }
            return Err("format must be key=value".to_owned());
        };
        let value = if let Some(path) = value.strip_prefix('@') {
            std::fs::read_to_string(path)
                .map_err(|e| format!("error reading file: open {path}: {}", io_text(&e)))?
        } else if let Some(rest) = value.strip_prefix("\\@") {
            format!("@{rest}")
        } else if value == "-" {
            if stdin_used {
                return Err("stdin already consumed".to_owned());
            }
            stdin_used = true;
            let mut buf = String::new();
            input.read_to_string(&mut buf).map_err(|e| io_text(&e))?;
            buf
        } else {
            value.to_owned()
        };
        match result.get_mut(key) {
            Some(Value::Array(list)) => list.push(Value::String(value)),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, Value::String(value)]);
            }
            None => {
                result.insert(key.to_owned(), Value::String(value));
            }
        }
    }
    Ok(result)
}

/// `parseArgsDataStringLists`: every value as a list of strings (query parameters).
pub(crate) fn parse_args_string_lists(
    input: &mut dyn Read,
    args: &[String],
) -> Result<Vec<(String, String)>, String> {
    let data = parse_args_data(input, args)?;
    let mut pairs = Vec::new();
    for (k, v) in data {
        match v {
            Value::Array(items) => {
                for item in items {
                    pairs.push((k.clone(), weak_string(&item)));
                }
            }
            other => pairs.push((k, weak_string(&other))),
        }
    }
    Ok(pairs)
}

/// `read`
pub(crate) fn read(env: &mut Env<'_>, a: ReadArgs) -> i32 {
    if let Err(c) = check_args(env, &a.args, 1, None, "1") {
        return c;
    }
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let path = sanitize_path(&a.args[0]);
    let query = match parse_args_string_lists(env.input(), &a.args[1..]) {
        Ok(q) => q,
        Err(e) => {
            env.error(&format!("Failed to parse K=V data: {e}"));
            return 1;
        }
    };
    let query: Vec<(&str, String)> = query.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    let secret = match client.read(&path, &query) {
        Ok(Some(s)) => s,
        Ok(None) => {
            env.error(&format!("No value found at {path}"));
            return 2;
        }
        Err(e) => {
            env.error(&format!("Error reading {path}: {e}"));
            return 2;
        }
    };
    if let Some(field) = &a.field {
        return output::print_raw_field(env, &secret, field);
    }
    output::output_secret(env, &secret)
}

/// `write`
pub(crate) fn write(env: &mut Env<'_>, a: WriteArgs) -> i32 {
    if let Err(c) = check_args(env, &a.args, 1, None, "1") {
        return c;
    }
    if a.args.len() == 1 && !a.force {
        env.error("Must supply data or use -force");
        return 1;
    }
    let path = sanitize_path(&a.args[0]);
    let data = match parse_args_data(env.input(), &a.args[1..]) {
        Ok(d) => d,
        Err(e) => {
            env.error(&format!("Failed to parse K=V data: {e}"));
            return 1;
        }
    };
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let result = client.write(&path, &Value::Object(data));
    handle_write_output(env, &path, result, a.field.as_deref())
}

/// `handleWriteSecretOutput`: the error, the success line, one field, or the secret.
pub(crate) fn handle_write_output(
    env: &mut Env<'_>,
    path: &str,
    result: Result<Option<Secret>, crate::client::Error>,
    field: Option<&str>,
) -> i32 {
    match result {
        Err(e) => {
            output::error_with_secret(env, &format!("Error writing data to {path}: {e}"), &e);
            2
        }
        Ok(None) => {
            if env.format == Format::Table {
                env.out(&format!("Success! Data written to: {path}"));
            }
            0
        }
        Ok(Some(secret)) => match field {
            Some(f) => output::print_raw_field(env, &secret, f),
            None => output::output_secret(env, &secret),
        },
    }
}

/// `list`
pub(crate) fn list(env: &mut Env<'_>, a: ListArgs) -> i32 {
    if let Err(c) = check_args(env, &a.args, 1, Some(1), "1") {
        return c;
    }
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let path = sanitize_path(&a.args[0]);
    let paged = a.after.is_some() || a.limit.is_some_and(|l| l > 0);
    let result = if paged {
        let query = [
            ("list", "true".to_owned()),
            ("after", a.after.clone().unwrap_or_default()),
            ("limit", a.limit.unwrap_or(0).to_string()),
        ];
        client.read(&path, &query)
    } else {
        client.list(&path)
    };
    let secret = match result {
        Ok(s) => s,
        Err(e) => {
            env.error(&format!("Error listing {path}: {e}"));
            return 2;
        }
    };
    output_list_result(env, &path, secret, false)
}

/// The tail of `list` and `kv list`: the keys, or bao's "nothing there" answers.
pub(crate) fn output_list_result(
    env: &mut Env<'_>,
    path: &str,
    secret: Option<Secret>,
    kv: bool,
) -> i32 {
    // A wrapped answer is shown as it is (`list.go`, `kv_list.go`).
    if let Some(s) = &secret {
        if s.wrap_info.as_ref().is_some_and(|w| w.ttl != 0) {
            return output::output_secret(env, s);
        }
    }
    let has_keys = secret
        .as_ref()
        .and_then(|s| s.data.as_ref())
        .and_then(|d| d.get("keys"))
        .is_some_and(|k| k.is_array());
    if env.format != Format::Table && !has_keys {
        output::output_map(env, &Map::new());
        return 2;
    }
    let Some(secret) = secret else {
        env.error(&format!("No value found at {path}"));
        return 2;
    };
    if secret.data.is_none() {
        if kv {
            env.error(&format!("No value found at {path}"));
            return 2;
        }
        return output::output_secret(env, &secret);
    }
    if !has_keys {
        env.error(&format!("No entries found at {path}"));
        return 2;
    }
    output::output_list(env, &secret)
}

/// `delete`
pub(crate) fn delete(env: &mut Env<'_>, a: DeleteArgs) -> i32 {
    if a.args.is_empty() {
        env.error("Not enough arguments (expected at least 1, got 0)");
        return 1;
    }
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let path = sanitize_path(&a.args[0]);
    let query = match parse_args_string_lists(env.input(), &a.args[1..]) {
        Ok(q) => q,
        Err(e) => {
            env.error(&format!("Failed to parse string list data: {e}"));
            return 1;
        }
    };
    let query: Vec<(&str, String)> = query.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    match client.delete(&path, &query) {
        Err(e) => {
            output::error_with_secret(env, &format!("Error deleting {path}: {e}"), &e);
            2
        }
        Ok(None) => {
            if env.format == Format::Table {
                env.out(&format!("Success! Data deleted (if it existed) at: {path}"));
            }
            0
        }
        Ok(Some(secret)) => match &a.field {
            Some(f) => output::print_raw_field(env, &secret, f),
            None => output::output_secret(env, &secret),
        },
    }
}

/// Merges a JSON object read from `r` into `result` (later keys win), as `addReader` does.
fn merge_json(result: &mut Map<String, Value>, r: &mut dyn Read) -> Result<(), String> {
    let mut text = String::new();
    r.read_to_string(&mut text).map_err(|e| io_text(&e))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    match value {
        Value::Object(m) => {
            result.extend(m);
            Ok(())
        }
        Value::Null => Ok(()),
        _ => Err("json: cannot unmarshal into a map of keys to values".to_owned()),
    }
}

/// `mapstructure.WeakDecode` of a scalar into a string.
fn weak_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "1" } else { "0" }.to_owned(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn io_text(e: &std::io::Error) -> String {
    // Go's wording for the common cases, without Rust's "(os error N)" suffix.
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn key_values_parse() {
        let mut input: &[u8] = b"";
        let m = parse_args_data(&mut input, &args(&["a=1", "b=x=y", "c="])).unwrap();
        assert_eq!(Value::Object(m), json!({"a": "1", "b": "x=y", "c": ""}));
    }

    #[test]
    fn at_file_reads_the_file_and_escaped_at_is_literal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.txt");
        std::fs::write(&path, "file-value\n").unwrap();
        let mut input: &[u8] = b"";
        let m = parse_args_data(
            &mut input,
            &args(&[&format!("k=@{}", path.display()), "e=\\@not-a-file"]),
        )
        .unwrap();
        assert_eq!(m["k"], "file-value\n");
        assert_eq!(m["e"], "@not-a-file");
        let missing = parse_args_data(&mut input, &args(&["k=@/nonexistent/x"])).unwrap_err();
        assert!(
            missing.starts_with("error reading file: open /nonexistent/x"),
            "{missing}"
        );
    }

    #[test]
    fn dash_reads_stdin_once() {
        let mut input: &[u8] = b"from-stdin";
        let m = parse_args_data(&mut input, &args(&["k=-"])).unwrap();
        assert_eq!(m["k"], "from-stdin");
        let mut input: &[u8] = b"x";
        let err = parse_args_data(&mut input, &args(&["a=-", "b=-"])).unwrap_err();
        assert_eq!(err, "stdin already consumed");
    }

    #[test]
    fn lone_dash_and_at_file_merge_json_objects() {
        let mut input: &[u8] = br#"{"a": 1, "b": {"c": true}}"#;
        let m = parse_args_data(&mut input, &args(&["-", "d=4"])).unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"a": 1, "b": {"c": true}, "d": "4"})
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.json");
        std::fs::write(&path, r#"{"z": "q"}"#).unwrap();
        let mut empty: &[u8] = b"";
        let m = parse_args_data(&mut empty, &args(&[&format!("@{}", path.display())])).unwrap();
        assert_eq!(m["z"], "q");
    }

    #[test]
    fn repeated_keys_become_lists_and_bad_args_fail() {
        let mut input: &[u8] = b"";
        let m = parse_args_data(&mut input, &args(&["p=a", "p=b", "p=c"])).unwrap();
        assert_eq!(m["p"], json!(["a", "b", "c"]));
        assert_eq!(
            parse_args_data(&mut input, &args(&["novalue"])).unwrap_err(),
            "format must be key=value"
        );
        let pairs = parse_args_string_lists(&mut input, &args(&["v=1", "v=2", "x=y"])).unwrap();
        assert!(
            pairs.contains(&("v".into(), "1".into())) && pairs.contains(&("v".into(), "2".into()))
        );
    }
}
