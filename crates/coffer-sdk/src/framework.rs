//! A small declarative path table for backends, after openbao `sdk/framework/path.go`: each
//! `Path` is a pattern such as `data/{path:*}` with the operations it serves; `Paths::route`
//! finds the first pattern matching a request path, captures its segments, and answers
//! `UnsupportedOperation` (405) when the pattern matches but not the operation, or
//! `UnsupportedPath` (404) when nothing matches.
//!
//! The handler type is the backend's own choice (an enum, a function pointer...), so routing
//! allocates nothing and the backend dispatches with a plain `match`. `Fields` reads typed
//! request fields with OpenBao's conversion rules and error texts.
//!
//! This module must not know any particular backend.

use serde_json::{Map, Value};

use crate::{Error, Operation};

/// A pattern and the handlers of the operations it serves.
#[derive(Debug, Clone)]
pub struct Path<H> {
    pattern: &'static str,
    parts: Vec<Part>,
    read: Option<H>,
    list: Option<H>,
    write: Option<H>,
    patch: Option<H>,
    delete: Option<H>,
}

/// One piece of a parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Text that must appear as is (may hold `/`).
    Literal(&'static str),
    /// `{name}`: one non-empty segment, up to the next `/`.
    Segment(&'static str),
    /// `{name:*}`: the rest of the path, possibly empty; only last.
    Rest(&'static str),
}

impl<H: Copy> Path<H> {
    /// A path matching `pattern`: literal text, `{name}` for one segment, and `{name:*}` (last)
    /// for the rest of the path. Patterns match the whole request path.
    ///
    /// # Panics
    /// On a malformed pattern (unclosed brace, `{name:*}` not last): patterns are constants of
    /// the backend, so this fails at its first test, never on a request.
    pub fn new(pattern: &'static str) -> Self {
        Path {
            pattern,
            parts: parse_pattern(pattern),
            read: None,
            list: None,
            write: None,
            patch: None,
            delete: None,
        }
    }

    /// Serves `Operation::Read`.
    pub fn read(mut self, handler: H) -> Self {
        self.read = Some(handler);
        self
    }

    /// Serves `Operation::List`.
    pub fn list(mut self, handler: H) -> Self {
        self.list = Some(handler);
        self
    }

    /// Serves `Operation::Create` and `Operation::Update` alike.
    pub fn write(mut self, handler: H) -> Self {
        self.write = Some(handler);
        self
    }

    /// Serves `Operation::Patch`.
    pub fn patch(mut self, handler: H) -> Self {
        self.patch = Some(handler);
        self
    }

    /// Serves `Operation::Delete`.
    pub fn delete(mut self, handler: H) -> Self {
        self.delete = Some(handler);
        self
    }

    /// Serves every operation with one handler (a catch-all).
    pub fn all(self, handler: H) -> Self {
        self.read(handler)
            .list(handler)
            .write(handler)
            .patch(handler)
            .delete(handler)
    }

    /// The pattern as written.
    pub fn pattern(&self) -> &'static str {
        self.pattern
    }

    fn handler(&self, op: Operation) -> Option<H> {
        match op {
            Operation::Read => self.read,
            Operation::List => self.list,
            Operation::Create | Operation::Update => self.write,
            Operation::Patch => self.patch,
            Operation::Delete => self.delete,
        }
    }

    /// The captures if `path` matches this pattern entirely.
    fn matches<'p>(&self, path: &'p str) -> Option<Captures<'p>> {
        let mut captures = Captures::default();
        let mut rest = path;
        for part in &self.parts {
            match *part {
                Part::Literal(text) => rest = rest.strip_prefix(text)?,
                Part::Segment(name) => {
                    let end = rest.find('/').unwrap_or(rest.len());
                    if end == 0 {
                        return None;
                    }
                    captures.items.push((name, &rest[..end]));
                    rest = &rest[end..];
                }
                Part::Rest(name) => {
                    captures.items.push((name, rest));
                    rest = "";
                }
            }
        }
        rest.is_empty().then_some(captures)
    }
}

/// The paths of a backend, tried in order: the first pattern that matches decides.
#[derive(Debug, Clone)]
pub struct Paths<H> {
    paths: Vec<Path<H>>,
}

impl<H: Copy> Default for Paths<H> {
    fn default() -> Self {
        Paths { paths: Vec::new() }
    }
}

impl<H: Copy> Paths<H> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a path; earlier paths win.
    pub fn path(mut self, path: Path<H>) -> Self {
        self.paths.push(path);
        self
    }

    /// The handler for `op` on `path` and the captured segments. As openbao's framework: the
    /// first matching pattern decides; if it lacks `op` the answer is `UnsupportedOperation`,
    /// and `UnsupportedPath` if no pattern matches.
    pub fn route<'p>(&self, path: &'p str, op: Operation) -> Result<Route<'p, H>, Error> {
        for candidate in &self.paths {
            if let Some(captures) = candidate.matches(path) {
                return match candidate.handler(op) {
                    Some(handler) => Ok(Route {
                        handler,
                        pattern: candidate.pattern,
                        captures,
                    }),
                    None => Err(Error::UnsupportedOperation),
                };
            }
        }
        Err(Error::UnsupportedPath(path.to_owned()))
    }
}

/// A matched path: the handler to run and what the pattern captured.
#[derive(Debug, Clone)]
pub struct Route<'p, H> {
    pub handler: H,
    /// The pattern that matched.
    pub pattern: &'static str,
    pub captures: Captures<'p>,
}

/// Segments captured by a pattern, borrowed from the request path.
#[derive(Debug, Clone, Default)]
pub struct Captures<'p> {
    items: Vec<(&'static str, &'p str)>,
}

impl<'p> Captures<'p> {
    /// The captured text of `{name}` or `{name:*}`, if the pattern has it.
    pub fn get(&self, name: &str) -> Option<&'p str> {
        self.items
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| *value)
    }
}

/// Typed access to request fields with OpenBao's weak conversions (a digit string is an int,
/// `"true"` a bool) and its error texts: `error converting input for field "x": ...`. When the
/// operation validates fields before its handler runs (OpenBao does so for reads, patches and
/// paths without an existence check), `upfront` adds its `Field validation failed: ` prefix.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    data: &'a Map<String, Value>,
    upfront: bool,
}

impl<'a> Fields<'a> {
    /// Fields of a request body.
    pub fn new(data: &'a Map<String, Value>) -> Self {
        Fields {
            data,
            upfront: false,
        }
    }

    /// Errors carry OpenBao's `Field validation failed: ` prefix when `upfront` is true.
    pub fn upfront(mut self, upfront: bool) -> Self {
        self.upfront = upfront;
        self
    }

    /// The raw value, if the field is present (even if null).
    pub fn raw(&self, name: &str) -> Option<&'a Value> {
        self.data.get(name)
    }

    /// An integer field: a JSON number (fractions truncated), a digit string or a bool.
    pub fn int(&self, name: &str) -> Result<Option<i64>, Error> {
        let Some(value) = self.data.get(name) else {
            return Ok(None);
        };
        weak_int(value)
            .map(Some)
            .map_err(|detail| self.error(name, &format!("'' {detail}")))
    }

    /// A bool field: a JSON bool, a number (non-zero is true) or a string Go's `ParseBool`
    /// accepts.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, Error> {
        let Some(value) = self.data.get(name) else {
            return Ok(None);
        };
        let parsed = match value {
            Value::Bool(b) => Some(*b),
            Value::Null => Some(false),
            Value::Number(n) => Some(n.as_f64().is_some_and(|f| f != 0.0)),
            Value::String(s) => match s.as_str() {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
                "0" | "f" | "F" | "false" | "FALSE" | "False" | "" => Some(false),
                _ => None,
            },
            _ => None,
        };
        match parsed {
            Some(b) => Ok(Some(b)),
            None if value.is_string() => Err(self.error(
                name,
                "'' cannot parse value as 'bool': strconv.ParseBool: invalid syntax",
            )),
            None => Err(self.error(name, &unconvertible("bool", value))),
        }
    }

    /// A string field; numbers and bools are printed as Go's weak decoding does.
    pub fn string(&self, name: &str) -> Result<Option<String>, Error> {
        let Some(value) = self.data.get(name) else {
            return Ok(None);
        };
        weak_string(value)
            .map(Some)
            .map_err(|detail| self.error(name, &detail))
    }

    /// A map field; `null` reads as absent.
    pub fn map(&self, name: &str) -> Result<Option<&'a Map<String, Value>>, Error> {
        match self.data.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(other) => Err(self.error(name, &unconvertible("map[string]interface {}", other))),
        }
    }

    /// A duration in whole seconds: a number of seconds or a Go duration string (`90s`,
    /// `1h30m`). Negative values are an error unless `signed`.
    pub fn duration_secs(&self, name: &str, signed: bool) -> Result<Option<i64>, Error> {
        let Some(value) = self.data.get(name) else {
            return Ok(None);
        };
        let secs = match value {
            Value::Null => 0,
            Value::Number(n) => match n.as_i64() {
                Some(i) => i,
                None => n.as_f64().map(|f| f as i64).unwrap_or(i64::MAX),
            },
            Value::String(s) => {
                let (negative, body) = match s.trim().strip_prefix('-') {
                    Some(body) => (true, body),
                    None => (false, s.trim()),
                };
                let secs = crate::duration::parse_str(body)
                    .map_err(|_| self.error(name, &format!("time: invalid duration {s:?}")))?;
                let secs = i64::try_from(secs).unwrap_or(i64::MAX);
                if negative {
                    -secs
                } else {
                    secs
                }
            }
            other => return Err(self.error(name, &unconvertible("int", other))),
        };
        if secs < 0 && !signed {
            return Err(self.error(name, &format!("cannot provide negative value '{secs}'")));
        }
        Ok(Some(secs))
    }

    /// A list of integers: a JSON array of numbers or digit strings, a comma-separated string,
    /// or a single number (OpenBao's `TypeCommaIntSlice`). Absent reads as empty.
    pub fn comma_ints(&self, name: &str) -> Result<Vec<i64>, Error> {
        let bad = |index: usize| {
            self.error(
                name,
                &format!(
                    "decoding failed due to the following error(s):\n\n'[{index}]' cannot parse \
                     value as 'int': strconv.ParseInt: invalid syntax"
                ),
            )
        };
        match self.data.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Number(n)) => n.as_i64().map(|i| vec![i]).ok_or_else(|| bad(0)),
            Some(Value::String(s)) => s
                .split(',')
                .filter(|part| !part.trim().is_empty())
                .enumerate()
                .map(|(i, part)| part.trim().parse::<i64>().map_err(|_| bad(i)))
                .collect(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::Number(n) => n.as_i64().ok_or_else(|| bad(i)),
                    Value::String(s) => s.trim().parse::<i64>().map_err(|_| bad(i)),
                    _ => Err(bad(i)),
                })
                .collect(),
            Some(other) => Err(self.error(name, &unconvertible("[]int", other))),
        }
    }

    fn error(&self, name: &str, detail: &str) -> Error {
        let prefix = if self.upfront {
            "Field validation failed: "
        } else {
            ""
        };
        Error::invalid(format!(
            "{prefix}error converting input for field {name:?}: {detail}"
        ))
    }
}

/// Go's `mapstructure.WeakDecode` of a JSON value into an int.
pub fn weak_int(value: &Value) -> Result<i64, String> {
    match value {
        Value::Null => Ok(0),
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| "cannot parse value as 'int'".to_owned()),
        Value::String(s) if s.is_empty() => Ok(0),
        Value::String(s) => s.parse::<i64>().map_err(|_| {
            "cannot parse value as 'int': strconv.ParseInt: invalid syntax".to_owned()
        }),
        other => Err(unconvertible("int", other)
            .trim_start_matches("'' ")
            .to_owned()),
    }
}

/// Go's `mapstructure.WeakDecode` of a JSON value into a string: bools become `1`/`0`,
/// numbers their shortest form, null the empty string.
pub fn weak_string(value: &Value) -> Result<String, String> {
    match value {
        Value::Null => Ok(String::new()),
        Value::Bool(b) => Ok(if *b { "1" } else { "0" }.to_owned()),
        Value::Number(n) => Ok(match n.as_i64() {
            Some(i) => i.to_string(),
            None => n.to_string(),
        }),
        Value::String(s) => Ok(s.clone()),
        other => Err(unconvertible("string", other)),
    }
}

/// mapstructure's message for a value of the wrong JSON type, naming Go's types.
fn unconvertible(expected: &str, got: &Value) -> String {
    let got = match got {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    };
    format!("'' expected type '{expected}', got unconvertible type '{got}'")
}

fn parse_pattern(pattern: &'static str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut rest = pattern;
    while !rest.is_empty() {
        assert!(
            !matches!(parts.last(), Some(Part::Rest(_))),
            "pattern {pattern:?}: {{name:*}} must be last"
        );
        match rest.find('{') {
            Some(0) => {
                let close = rest
                    .find('}')
                    .unwrap_or_else(|| panic!("pattern {pattern:?}: unclosed {{"));
                let inner = &rest[1..close];
                parts.push(match inner.strip_suffix(":*") {
                    Some(name) => Part::Rest(name),
                    None => Part::Segment(inner),
                });
                rest = &rest[close + 1..];
            }
            Some(open) => {
                parts.push(Part::Literal(&rest[..open]));
                rest = &rest[open..];
            }
            None => {
                parts.push(Part::Literal(rest));
                rest = "";
            }
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum H {
        Config,
        Data,
        Role,
        Any,
    }

    fn table() -> Paths<H> {
        Paths::new()
            .path(Path::new("config").read(H::Config).write(H::Config))
            .path(
                Path::new("data/{path:*}")
                    .read(H::Data)
                    .write(H::Data)
                    .delete(H::Data),
            )
            .path(Path::new("roles/{name}/creds").read(H::Role))
    }

    #[test]
    fn literal_pattern_matches_only_itself() {
        let paths = table();
        assert_eq!(
            paths.route("config", Operation::Read).unwrap().handler,
            H::Config
        );
        assert!(matches!(
            paths.route("config/", Operation::Read),
            Err(Error::UnsupportedPath(p)) if p == "config/"
        ));
        assert!(matches!(
            paths.route("configx", Operation::Read),
            Err(Error::UnsupportedPath(_))
        ));
    }

    #[test]
    fn rest_capture_takes_everything_including_empty_and_slashes() {
        let paths = table();
        let route = paths.route("data/a/b/c", Operation::Update).unwrap();
        assert_eq!(route.handler, H::Data);
        assert_eq!(route.captures.get("path"), Some("a/b/c"));
        assert_eq!(
            paths
                .route("data/", Operation::Read)
                .unwrap()
                .captures
                .get("path"),
            Some("")
        );
        assert!(paths.route("data", Operation::Read).is_err());
    }

    #[test]
    fn segment_capture_is_one_non_empty_segment() {
        let paths = table();
        let route = paths.route("roles/web/creds", Operation::Read).unwrap();
        assert_eq!(route.captures.get("name"), Some("web"));
        assert_eq!(route.captures.get("missing"), None);
        assert!(paths.route("roles//creds", Operation::Read).is_err());
        assert!(paths.route("roles/a/b/creds", Operation::Read).is_err());
    }

    #[test]
    fn matching_path_without_the_operation_is_unsupported_operation() {
        let paths = table();
        assert!(matches!(
            paths.route("data/x", Operation::List),
            Err(Error::UnsupportedOperation)
        ));
        assert!(matches!(
            paths.route("data/x", Operation::Patch),
            Err(Error::UnsupportedOperation)
        ));
        assert_eq!(
            paths.route("data/x", Operation::Create).unwrap().handler,
            H::Data
        );
    }

    #[test]
    fn first_match_wins_and_catch_all_comes_last() {
        let paths = table().path(Path::new("{path:*}").all(H::Any));
        assert_eq!(
            paths.route("config", Operation::Read).unwrap().handler,
            H::Config
        );
        assert_eq!(
            paths.route("other/x", Operation::List).unwrap().handler,
            H::Any
        );
        // data/ still decides for data/x: the catch-all is never reached.
        assert!(matches!(
            paths.route("data/x", Operation::List),
            Err(Error::UnsupportedOperation)
        ));
    }

    #[test]
    #[should_panic(expected = "must be last")]
    fn rest_capture_must_be_last() {
        let _ = Path::<H>::new("{a:*}/x");
    }

    #[test]
    fn fields_convert_weakly_with_openbao_messages() {
        let body = json!({
            "n": 5, "s": "7", "f": 2.9, "bad": "x", "b": "true", "bb": "yes",
            "m": {"k": 1}, "notmap": "s", "d": "1h30m", "neg": "-5s", "v": "1,2",
            "va": [1, "3"], "vbad": [1.5], "one": 4
        });
        let data = body.as_object().unwrap();
        let fields = Fields::new(data);
        assert_eq!(fields.int("n").unwrap(), Some(5));
        assert_eq!(fields.int("s").unwrap(), Some(7));
        assert_eq!(fields.int("f").unwrap(), Some(2));
        assert_eq!(fields.int("absent").unwrap(), None);
        let err = fields.int("bad").unwrap_err().to_string();
        assert_eq!(
            err,
            "error converting input for field \"bad\": '' cannot parse value as 'int': \
             strconv.ParseInt: invalid syntax"
        );
        let err = fields.upfront(true).int("bad").unwrap_err().to_string();
        assert!(err.starts_with("Field validation failed: error converting input"));
        assert_eq!(fields.bool("b").unwrap(), Some(true));
        assert!(fields.bool("bb").is_err());
        assert_eq!(fields.map("m").unwrap().unwrap().len(), 1);
        assert_eq!(
            fields.map("notmap").unwrap_err().to_string(),
            "error converting input for field \"notmap\": '' expected type \
             'map[string]interface {}', got unconvertible type 'string'"
        );
        assert_eq!(fields.duration_secs("d", false).unwrap(), Some(5400));
        assert_eq!(fields.duration_secs("neg", true).unwrap(), Some(-5));
        assert_eq!(
            fields.duration_secs("neg", false).unwrap_err().to_string(),
            "error converting input for field \"neg\": cannot provide negative value '-5'"
        );
        assert_eq!(fields.comma_ints("v").unwrap(), vec![1, 2]);
        assert_eq!(fields.comma_ints("va").unwrap(), vec![1, 3]);
        assert_eq!(fields.comma_ints("one").unwrap(), vec![4]);
        assert!(fields.comma_ints("absent").unwrap().is_empty());
        assert!(fields
            .comma_ints("vbad")
            .unwrap_err()
            .to_string()
            .contains("'[0]' cannot parse value as 'int'"));
    }

    #[test]
    fn weak_string_prints_like_go() {
        assert_eq!(weak_string(&json!(1)).unwrap(), "1");
        assert_eq!(weak_string(&json!(1.5)).unwrap(), "1.5");
        assert_eq!(weak_string(&json!(true)).unwrap(), "1");
        assert_eq!(weak_string(&json!(null)).unwrap(), "");
        assert!(weak_string(&json!({"a": 1})).is_err());
    }
}
