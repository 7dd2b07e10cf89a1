//! `policy write|read|list|delete|fmt`: ACL policies over `sys/policies/acl/*`, and `fmt`, which
//! rewrites a policy file in the canonical layout `bao policy fmt` produces (the HCL 1 printer:
//! two-space indents, `=` aligned across adjacent one-line attributes, a blank line around
//! multi-line items and between top-level blocks, one-line lists kept on one line, multi-line
//! lists one element a line with a trailing comma, comments kept).
//!
//! Copies OpenBao `internal/command/policy_*.go` and `api/sys_policy.go`. `fmt` parses with
//! hcl-rs (its `hcl-edit` layer keeps comments and source spans) and checks the policy as
//! OpenBao's `ParseACLPolicy` does (top-level keys, path keys, capabilities) before writing; a
//! file that does not parse is left untouched.

use std::ops::Range;

use hcl::edit::expr::{Array, Expression, Object, ObjectKey};
use hcl::edit::structure::{Body, Structure};
use hcl::edit::{Decor, Decorate, Span};
use serde_json::{json, Map, Value};

use crate::client::Secret;
use crate::output::{self, Format};
use crate::{check_args, Env};

/// `policy` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum PolicyCommand {
    /// Upload a policy from a file or stdin (`-`)
    Write(PolicyArgs),
    /// Print a policy
    Read(PolicyArgs),
    /// List the installed policies
    List(PolicyArgs),
    /// Delete a policy by name
    Delete(PolicyArgs),
    /// Format a policy file in place
    Fmt(PolicyArgs),
}

/// The positional arguments of a `policy` verb: `write NAME FILE|-`, `read NAME`, `list`,
/// `delete NAME`, `fmt FILE`.
#[derive(clap::Args, Debug, Default)]
pub struct PolicyArgs {
    /// NAME, FILE or both, as the verb takes them
    #[arg(allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub(crate) fn run(env: &mut Env<'_>, c: PolicyCommand) -> i32 {
    match c {
        PolicyCommand::Write(a) => write(env, a),
        PolicyCommand::Read(a) => read(env, a),
        PolicyCommand::List(a) => list(env, a),
        PolicyCommand::Delete(a) => delete(env, a),
        PolicyCommand::Fmt(a) => fmt(env, a),
    }
}

fn write(env: &mut Env<'_>, a: PolicyArgs) -> i32 {
    if let Err(c) = check_args(env, &a.args, 2, Some(2), "2") {
        return c;
    }
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    // Policy names are lowercased, as the server stores them.
    let name = &a.args[0];
    let formatted = name.trim().to_lowercase();
    let path = a.args[1].trim();
    let mut rules = String::new();
    if path == "-" {
        if let Err(e) = env.input().read_to_string(&mut rules) {
            env.error(&format!("Error reading policy: {e}"));
            return 2;
        }
    } else {
        match std::fs::read_to_string(path) {
            Ok(r) => rules = r,
            Err(e) => {
                env.error(&format!(
                    "Error opening policy file: open {path}: {}",
                    io_text(&e)
                ));
                return 2;
            }
        }
    }
    if let Err(e) = client.raw(
        "PUT",
        &format!("sys/policies/acl/{formatted}"),
        &[],
        Some(&json!({ "policy": rules })),
    ) {
        env.error(&format!("Error uploading policy: {e}"));
        return 2;
    }
    if *name != formatted {
        env.warn(&format!(
            "Policy name was converted from \"{name}\" to \"{formatted}\""
        ));
    }
    env.out(&format!("Success! Uploaded policy: {formatted}"));
    0
}

fn read(env: &mut Env<'_>, a: PolicyArgs) -> i32 {
    if let Err(c) = check_args(env, &a.args, 1, Some(1), "1") {
        return c;
    }
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let name = a.args[0].trim().to_lowercase();
    // `GetPolicy`: a 404 is "no policy", not an error.
    let rules = match client.send("GET", &format!("sys/policies/acl/{name}"), &[], None, None) {
        Ok(reply) if reply.status == 404 => String::new(),
        Ok(reply) => match client
            .checked(reply)
            .map_err(|e| e.to_string())
            .and_then(|r| crate::client::parse_secret(&r.body))
        {
            Ok(secret) => match secret.and_then(|s| s.data) {
                None => {
                    env.error(&format!(
                        "Error reading policy named {name}: data from server response is empty"
                    ));
                    return 2;
                }
                Some(d) => match d.get("policy") {
                    Some(Value::String(p)) => p.clone(),
                    _ => {
                        env.error(&format!(
                            "Error reading policy named {name}: no policy found in response"
                        ));
                        return 2;
                    }
                },
            },
            Err(e) => {
                env.error(&format!("Error reading policy named {name}: {e}"));
                return 2;
            }
        },
        Err(e) => {
            env.error(&format!("Error reading policy named {name}: {e}"));
            return 2;
        }
    };
    if rules.is_empty() {
        env.error(&format!("No policy named: {name}"));
        return 2;
    }
    match env.format {
        Format::Table => env.out(rules.trim()),
        Format::Json => {
            let mut m = Map::new();
            m.insert("policy".into(), Value::String(rules));
            output::output_map(env, &m);
        }
    }
    0
}

fn list(env: &mut Env<'_>, a: PolicyArgs) -> i32 {
    if let Err(c) = check_args(env, &a.args, 0, Some(0), "0") {
        return c;
    }
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let keys = match client.raw(
        "GET",
        "sys/policies/acl",
        &[("list", "true".to_owned())],
        None,
    ) {
        Ok(reply) => match crate::client::parse_secret(&reply.body) {
            Ok(Some(Secret { data: Some(d), .. })) => d.get("keys").cloned().unwrap_or_default(),
            Ok(_) => {
                env.error("Error listing policies: data from server response is empty");
                return 2;
            }
            Err(e) => {
                env.error(&format!("Error listing policies: {e}"));
                return 2;
            }
        },
        Err(e) => {
            env.error(&format!("Error listing policies: {e}"));
            return 2;
        }
    };
    match env.format {
        Format::Table => {
            for k in keys.as_array().into_iter().flatten() {
                let text = output::fmt_value(k);
                env.out(&text);
            }
        }
        Format::Json => {
            let text = output::go_json(&output::Sorted(&keys));
            env.out(&text);
        }
    }
    0
}

fn delete(env: &mut Env<'_>, a: PolicyArgs) -> i32 {
    if let Err(c) = check_args(env, &a.args, 1, Some(1), "1") {
        return c;
    }
    let client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let name = a.args[0].trim().to_lowercase();
    if let Err(e) = client.raw("DELETE", &format!("sys/policies/acl/{name}"), &[], None) {
        env.error(&format!("Error deleting {name}: {e}"));
        return 2;
    }
    env.out(&format!("Success! Deleted policy: {name}"));
    0
}

fn fmt(env: &mut Env<'_>, a: PolicyArgs) -> i32 {
    if let Err(c) = check_args(env, &a.args, 1, Some(1), "1") {
        return c;
    }
    let path = expand_home(a.args[0].trim());
    let source = match std::fs::read_to_string(&path) {
        Ok(s) => s,
        Err(e) => {
            env.error(&format!(
                "Error reading source file: open {path}: {}",
                io_text(&e)
            ));
            return 1;
        }
    };
    let formatted = match format_policy(&source) {
        Ok(f) => f,
        Err(e) => {
            env.error(&e);
            return 1;
        }
    };
    if let Err(e) = std::fs::write(&path, formatted) {
        env.error(&format!("Error writing result: {e}"));
        return 1;
    }
    env.out(&format!("Success! Formatted policy: {path}"));
    0
}

/// Checks a policy as OpenBao's `ParseACLPolicy` does and returns it in `bao policy fmt`'s
/// layout. Errors read `failed to parse policy: ...`; nothing in the source is dropped (a
/// comment the layout could not place is an error rather than a silent loss).
pub fn format_policy(source: &str) -> Result<String, String> {
    let body = hcl::edit::parser::parse_body(source)
        .map_err(|e| format!("failed to parse policy: {e}"))?;
    check_policy(&body, source)?;
    let printer = Printer { src: source };
    let mut out = String::new();
    printer.top_level(&body, &mut out);
    let missing: Vec<String> = comments(source)
        .into_iter()
        .filter(|c| !out.contains(c.as_str()))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "Error printing result: cannot place the comment {}",
            missing[0]
        ));
    }
    Ok(out)
}

/// The checks of `ParseACLPolicy` that need no server: top-level and path keys, and
/// capability names.
fn check_policy(body: &Body, src: &str) -> Result<(), String> {
    for s in body.iter() {
        let (key, span) = match s {
            Structure::Attribute(a) => (a.key.as_str().to_owned(), a.span()),
            Structure::Block(b) => (b.ident.as_str().to_owned(), b.span()),
        };
        if key != "name" && key != "path" {
            return Err(format!(
                "failed to parse policy: invalid key \"{key}\" on line {}",
                line_of(src, span)
            ));
        }
        let Structure::Block(b) = s else {
            continue;
        };
        if key != "path" {
            continue;
        }
        let Some(label) = b.labels.first() else {
            return Err("failed to parse policy: a path block needs its path".to_owned());
        };
        let path = label.as_str().to_owned();
        for item in b.body.iter() {
            let Structure::Attribute(attr) = item else {
                let Structure::Block(inner) = item else {
                    continue;
                };
                if !PATH_KEYS.contains(&inner.ident.as_str()) {
                    return Err(format!(
                        "failed to parse policy: path {path:?}: invalid key {:?} on line {}",
                        inner.ident.as_str(),
                        line_of(src, inner.span())
                    ));
                }
                continue;
            };
            let k = attr.key.as_str();
            if !PATH_KEYS.contains(&k) {
                return Err(format!(
                    "failed to parse policy: path {path:?}: invalid key {k:?} on line {}",
                    line_of(src, attr.span())
                ));
            }
            if k == "capabilities" {
                let Expression::Array(list) = &attr.value else {
                    return Err(format!(
                        "failed to parse policy: path {path:?}: capabilities must be a list"
                    ));
                };
                for c in list.iter() {
                    let name = match c {
                        Expression::String(s) => s.as_str().to_owned(),
                        other => other.to_string(),
                    };
                    if !CAPABILITIES.contains(&name.as_str()) {
                        // OpenBao names the path twice here (a prefixed error of a prefixed error).
                        return Err(format!(
                            "failed to parse policy: path {path:?}: path {path:?}: invalid capability {name:?}"
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Emits HCL in the layout of the HCL 1 printer (`hashicorp/hcl/hcl/printer`).
struct Printer<'a> {
    src: &'a str,
}

/// One item of a body or an object: its key text, its value, where it sits in the source and
/// the comments around it.
struct Item<'a> {
    key: String,
    value: ItemValue<'a>,
    span: Option<Range<usize>>,
    lead: Vec<String>,
    trail: Option<String>,
}

enum ItemValue<'a> {
    Expr(&'a Expression),
    Block(&'a Body),
}

impl Printer<'_> {
    /// The file: blank lines between items, except between adjacent one-line objects.
    fn top_level(&self, body: &Body, out: &mut String) {
        let items = self.body_items(body);
        let rendered: Vec<Vec<String>> = items.iter().map(|i| self.render_item(i, 0)).collect();
        for (i, item) in items.iter().enumerate() {
            for c in &item.lead {
                out.push_str(c);
                out.push('\n');
            }
            push_lines(out, &rendered[i], item.trail.as_deref());
            if i + 1 < items.len() {
                let next = &items[i + 1];
                let adjacent = self.line(next.span.clone()) == self.end_line(item.span.clone()) + 1
                    && next.lead.is_empty();
                let one_line_objects = rendered[i].len() == 1
                    && rendered[i + 1].len() == 1
                    && matches!(item.value, ItemValue::Block(_))
                    && matches!(next.value, ItemValue::Block(_));
                if !(adjacent && one_line_objects) {
                    out.push('\n');
                }
            }
        }
        for c in trailing_comments(body.decor()) {
            out.push_str(&c);
            out.push('\n');
        }
    }

    fn body_items<'b>(&self, body: &'b Body) -> Vec<Item<'b>> {
        body.iter()
            .map(|s| match s {
                Structure::Attribute(a) => Item {
                    key: a.key.as_str().to_owned(),
                    value: ItemValue::Expr(&a.value),
                    span: a.span(),
                    lead: lead_comments(a.decor()),
                    trail: trail_comment(a.decor()).or_else(|| trail_comment(a.value.decor())),
                },
                Structure::Block(b) => {
                    let mut key = b.ident.as_str().to_owned();
                    for l in &b.labels {
                        key.push(' ');
                        key.push_str(&self.text(l.span(), l));
                    }
                    Item {
                        key,
                        value: ItemValue::Block(&b.body),
                        span: b.span(),
                        lead: lead_comments(b.decor()),
                        trail: trail_comment(b.decor()),
                    }
                }
            })
            .collect()
    }

    fn object_items<'b>(&self, object: &'b Object) -> Vec<Item<'b>> {
        object
            .iter()
            .map(|(k, v)| {
                let (key, decor, span) = match k {
                    ObjectKey::Ident(i) => (i.as_str().to_owned(), i.decor(), i.span()),
                    ObjectKey::Expression(e) => {
                        (self.text(e.span(), &e.to_string()), e.decor(), e.span())
                    }
                };
                let span = match (span, v.expr().span()) {
                    (Some(a), Some(b)) => Some(a.start..b.end),
                    (a, _) => a,
                };
                Item {
                    key,
                    value: ItemValue::Expr(v.expr()),
                    span,
                    lead: lead_comments(decor),
                    trail: trail_comment(v.expr().decor()),
                }
            })
            .collect()
    }

    /// The lines of one item at `indent`, the first without its indent (the caller places it).
    fn render_item(&self, item: &Item<'_>, indent: usize) -> Vec<String> {
        match item.value {
            ItemValue::Block(body) => {
                let items = self.body_items(body);
                let mut lines = self.render_object(&item.key, &items, indent, body.decor());
                if let Some(first) = lines.first_mut() {
                    *first = first.replacen(" = {", " {", 1);
                }
                lines
            }
            ItemValue::Expr(Expression::Object(o)) => {
                let items = self.object_items(o);
                self.render_object(&item.key, &items, indent, o.decor())
            }
            ItemValue::Expr(e) => {
                let value = self.render_expr(e, indent);
                let mut lines = value;
                lines[0] = format!("{} = {}", item.key, lines[0]);
                lines
            }
        }
    }

    /// `KEY = {` ... `}` (a block drops the `=`): runs of adjacent one-line items aligned on
    /// `=`, a blank line before each run but the first.
    fn render_object(
        &self,
        key: &str,
        items: &[Item<'_>],
        indent: usize,
        decor: &Decor,
    ) -> Vec<String> {
        let inner_trailing = trailing_comments(decor);
        if items.is_empty() && inner_trailing.is_empty() {
            return vec![format!("{key} = {{}}")];
        }
        let pad = " ".repeat(indent + 2);
        let mut lines = vec![format!("{key} = {{")];
        let rendered: Vec<Vec<String>> = items
            .iter()
            .map(|i| self.render_item(i, indent + 2))
            .collect();
        let mut i = 0;
        let mut first_run = true;
        while i < items.len() {
            // A run: one-line items on adjacent source lines.
            let mut end = i + 1;
            if rendered[i].len() == 1 {
                while end < items.len()
                    && rendered[end].len() == 1
                    && self.line(items[end].span.clone())
                        == self.end_line(items[end - 1].span.clone()) + 1
                {
                    end += 1;
                }
            }
            if !first_run {
                lines.push(String::new());
            }
            first_run = false;
            let width = items[i..end]
                .iter()
                .map(|it| it.key.chars().count())
                .max()
                .unwrap_or(0);
            for k in i..end {
                for c in &items[k].lead {
                    lines.push(format!("{pad}{c}"));
                }
                let mut item_lines = rendered[k].clone();
                if end - i > 1 || rendered[k].len() == 1 {
                    // Align `KEY = value`: pad the key to the run's widest.
                    let key_len = items[k].key.chars().count();
                    if let Some(rest) = item_lines[0].strip_prefix(&items[k].key) {
                        if rest.starts_with(" = ") && width > key_len {
                            item_lines[0] =
                                format!("{}{}{rest}", items[k].key, " ".repeat(width - key_len));
                        }
                    }
                }
                for (n, l) in item_lines.iter().enumerate() {
                    let mut line = if n == 0 {
                        format!("{pad}{l}")
                    } else {
                        l.clone()
                    };
                    if n + 1 == item_lines.len() {
                        if let Some(t) = &items[k].trail {
                            line.push(' ');
                            line.push_str(t);
                        }
                    }
                    lines.push(line);
                }
            }
            i = end;
        }
        for c in inner_trailing {
            lines.push(format!("{pad}{c}"));
        }
        lines.push(format!("{}}}", " ".repeat(indent)));
        lines
    }

    /// An expression's lines; lines after the first carry their full indent.
    fn render_expr(&self, e: &Expression, indent: usize) -> Vec<String> {
        match e {
            Expression::Array(a) => self.render_array(a, indent),
            Expression::Object(o) => {
                let items = self.object_items(o);
                let mut lines = self.render_object("", &items, indent, o.decor());
                lines[0] = lines[0].trim_start_matches(" = ").to_owned();
                lines
            }
            other => {
                let text = self.text(other.span(), &other.to_string());
                text.lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
                    .max_one()
            }
        }
    }

    /// A list that sat on one line stays there (`["a", "b"]`); otherwise one element a line,
    /// each followed by a comma.
    fn render_array(&self, a: &Array, indent: usize) -> Vec<String> {
        let multi_line = a
            .span()
            .is_some_and(|s| self.line(Some(s.clone())) != self.end_line(Some(s)));
        let elems: Vec<Vec<String>> = a.iter().map(|v| self.render_expr(v, indent + 2)).collect();
        if !multi_line || a.is_empty() {
            let parts: Vec<String> = elems.iter().map(|l| l.join(" ")).collect();
            return vec![format!("[{}]", parts.join(", "))];
        }
        let pad = " ".repeat(indent + 2);
        let mut lines = vec!["[".to_owned()];
        for (v, l) in a.iter().zip(elems) {
            let n = l.len();
            for (i, text) in l.into_iter().enumerate() {
                let mut line = if i == 0 { format!("{pad}{text}") } else { text };
                if i + 1 == n {
                    line.push(',');
                    if let Some(t) = trail_comment(v.decor()) {
                        line.push(' ');
                        line.push_str(&t);
                    }
                }
                lines.push(line);
            }
        }
        lines.push(format!("{}]", " ".repeat(indent)));
        lines
    }

    /// The source text of a span (the exact quoting and number spelling the author used).
    fn text(&self, span: Option<Range<usize>>, fallback: &str) -> String {
        span.and_then(|s| self.src.get(s))
            .map(|t| t.trim().to_owned())
            .unwrap_or_else(|| fallback.trim().to_owned())
    }

    fn line(&self, span: Option<Range<usize>>) -> usize {
        line_of(self.src, span)
    }

    fn end_line(&self, span: Option<Range<usize>>) -> usize {
        match span {
            Some(s) => line_of(self.src, Some(s.end.saturating_sub(1)..s.end)),
            None => 0,
        }
    }
}

/// At least one line (an empty expression text still takes its place).
trait AtLeastOne {
    fn max_one(self) -> Vec<String>;
}

impl AtLeastOne for Vec<String> {
    fn max_one(mut self) -> Vec<String> {
        if self.is_empty() {
            self.push(String::new());
        }
        self
    }
}

fn push_lines(out: &mut String, lines: &[String], trail: Option<&str>) {
    for (n, l) in lines.iter().enumerate() {
        out.push_str(l);
        if n + 1 == lines.len() {
            if let Some(t) = trail {
                out.push(' ');
                out.push_str(t);
            }
        }
        out.push('\n');
    }
}

/// The comments in a decor prefix, one per line, trimmed.
fn lead_comments(decor: &Decor) -> Vec<String> {
    decor.prefix().map(|p| comment_lines(p)).unwrap_or_default()
}

/// A comment in a decor suffix (on the item's line), if any.
fn trail_comment(decor: &Decor) -> Option<String> {
    let lines = decor.suffix().map(|s| comment_lines(s))?;
    (!lines.is_empty()).then(|| lines.join(" "))
}

/// Comments after the last item of a body or object.
fn trailing_comments(decor: &Decor) -> Vec<String> {
    decor.suffix().map(|s| comment_lines(s)).unwrap_or_default()
}

fn comment_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Every comment in HCL source (`#`, `//`, `/* */`), outside strings, trimmed.
fn comments(src: &str) -> Vec<String> {
    let mut found = Vec::new();
    let bytes = src.as_bytes();
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let c = bytes[i];
        if in_string {
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == b'"' || c == b'\n' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'#' => {
                let end = src[i..].find('\n').map_or(src.len(), |e| i + e);
                found.push(src[i..end].trim().to_owned());
                i = end;
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let end = src[i..].find('\n').map_or(src.len(), |e| i + e);
                found.push(src[i..end].trim().to_owned());
                i = end;
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = src[i + 2..].find("*/").map_or(src.len(), |e| i + 2 + e + 2);
                // Each line of a block comment must survive.
                found.extend(comment_lines(&src[i..end]));
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// The 1-based line of a span's start (0 when unknown).
fn line_of(src: &str, span: Option<Range<usize>>) -> usize {
    match span {
        Some(s) => src[..s.start.min(src.len())].matches('\n').count() + 1,
        None => 0,
    }
}

/// `homedir.Expand`: a leading `~` is the home directory.
fn expand_home(path: &str) -> String {
    if path == "~" || path.starts_with("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return format!("{}{}", home.to_string_lossy(), &path[1..]);
        }
    }
    path.to_owned()
}

fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

/// The keys a `path` block may hold (`parsePaths`).
const PATH_KEYS: &[&str] = &[
    "comment",
    "policy",
    "capabilities",
    "allowed_parameters",
    "denied_parameters",
    "required_parameters",
    "min_wrapping_ttl",
    "max_wrapping_ttl",
    "mfa_methods",
    "pagination_limit",
    "expiration",
    "list_scan_response_keys_filter_path",
    "control_group",
];

/// The capabilities a policy may grant.
const CAPABILITIES: &[&str] = &[
    "deny", "create", "read", "update", "delete", "list", "sudo", "patch", "scan",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmt_matches_bao_layout() {
        let src = "# a comment\npath \"secret/*\" {\ncapabilities = [\"read\",\"list\"]\n   allowed_parameters = {\n  \"foo\" = []\n  \"bar\" = [\"a\", \"b\"]\n   }\n}\npath   \"sys/x\"   {   capabilities=[\"deny\"] }\n\npath \"auth/token/create\" {\n  capabilities = [\"create\", \"update\"]\n  min_wrapping_ttl = \"1s\"\n  max_wrapping_ttl = 90\n}\n";
        // What `bao policy fmt` 2.7.2 wrote for this file.
        let want = "# a comment\npath \"secret/*\" {\n  capabilities = [\"read\", \"list\"]\n\n  allowed_parameters = {\n    \"foo\" = []\n    \"bar\" = [\"a\", \"b\"]\n  }\n}\n\npath \"sys/x\" {\n  capabilities = [\"deny\"]\n}\n\npath \"auth/token/create\" {\n  capabilities     = [\"create\", \"update\"]\n  min_wrapping_ttl = \"1s\"\n  max_wrapping_ttl = 90\n}\n";
        assert_eq!(format_policy(src).unwrap(), want);
        assert_eq!(format_policy(want).unwrap(), want, "formatting is stable");
    }

    #[test]
    fn fmt_one_line_block_and_multi_line_list() {
        assert_eq!(
            format_policy("path \"a\" { capabilities = [\"read\"] }").unwrap(),
            "path \"a\" {\n  capabilities = [\"read\"]\n}\n"
        );
        assert_eq!(
            format_policy("path \"a\" {\n  capabilities = [\n \"read\",\n  \"list\"\n]\n}\n\n\n\npath \"b\" {}\n").unwrap(),
            "path \"a\" {\n  capabilities = [\n    \"read\",\n    \"list\",\n  ]\n}\n\npath \"b\" {}\n"
        );
    }

    #[test]
    fn fmt_rejects_what_openbao_rejects() {
        let e = format_policy("path \"a\" { capabilities = [\"reed\"] }").unwrap_err();
        assert_eq!(
            e,
            "failed to parse policy: path \"a\": path \"a\": invalid capability \"reed\""
        );
        assert!(format_policy("path \"a\" { capabilities = [\"read\"")
            .unwrap_err()
            .starts_with("failed to parse policy: "));
        assert!(format_policy("bogus \"a\" {}")
            .unwrap_err()
            .contains("invalid key \"bogus\" on line 1"));
        assert!(format_policy("path \"a\" {\n  colour = 1\n}")
            .unwrap_err()
            .contains("path \"a\": invalid key \"colour\" on line 2"));
    }

    #[test]
    fn fmt_keeps_comments() {
        let src = "// top\npath \"a\" {\n  # why\n  capabilities = [\"read\"] # inline\n}\n";
        let out = format_policy(src).unwrap();
        for c in ["// top", "# why", "# inline"] {
            assert!(out.contains(c), "{c} lost:\n{out}");
        }
        assert_eq!(comments("x = \"# not\" # yes"), vec!["# yes".to_owned()]);
    }
}
