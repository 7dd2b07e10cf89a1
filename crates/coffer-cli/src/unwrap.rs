//! `unwrap [TOKEN]`: reads a response-wrapped secret back through `sys/wrapping/unwrap`. A
//! wrapping token works once: the second unwrap is an error from the server (exit 2).
//!
//! Copies OpenBao `internal/command/unwrap.go` and `api/logical.go` `Unwrap`: with no argument
//! the current token is the wrapping token; a token argument goes as the client token when
//! there is no current token, and in the body (`{"token": ...}`) otherwise.

use serde_json::{json, Value};

use crate::client::{Client, Error, Secret, Token};
use crate::output::{self, Format};
use crate::Env;

/// `unwrap [-field F] [TOKEN]`
///
/// Its `Debug` hides the positional argument: it is a wrapping token.
#[derive(clap::Args, Default)]
pub struct UnwrapArgs {
    /// Print only the named field
    #[arg(long)]
    pub field: Option<String>,
    /// TOKEN (default: the current token)
    pub args: Vec<String>,
}

impl std::fmt::Debug for UnwrapArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnwrapArgs")
            .field("field", &self.field)
            .field("args", &"[REDACTED]")
            .finish()
    }
}

pub(crate) fn unwrap(env: &mut Env<'_>, a: UnwrapArgs) -> i32 {
    if a.args.len() > 1 {
        env.error(&format!(
            "Too many arguments (expected 0-1, got {})",
            a.args.len()
        ));
        return 1;
    }
    let mut client = match env.client() {
        Ok(c) => c,
        Err(c) => return c,
    };
    let token = a.args.first().map(|t| Token::new(t.as_str()));
    let secret = match unwrap_token(&mut client, token.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            env.error(&format!("Error unwrapping: {e}"));
            return 2;
        }
    };
    let Some(secret) = secret else {
        if env.format == Format::Table {
            env.out("Successfully unwrapped. There was no data in the wrapped secret.");
        }
        return 0;
    };
    if let Some(f) = &a.field {
        return output::print_raw_field(env, &secret, f);
    }
    let is_list = secret
        .data
        .as_ref()
        .and_then(|d| d.get("keys"))
        .is_some_and(Value::is_array);
    if is_list {
        return output::output_list(env, &secret);
    }
    output::output_secret(env, &secret)
}

/// `Logical().Unwrap`: `PUT sys/wrapping/unwrap`, the wrapping token as the client token or in
/// the body; a 404 carrying data or warnings is the wrapped (404) answer itself.
pub(crate) fn unwrap_token(
    client: &mut Client,
    wrapping_token: Option<&Token>,
) -> Result<Option<Secret>, Error> {
    let mut body = None;
    if let Some(wt) = wrapping_token {
        let trimmed = wt.expose().trim();
        match client.token() {
            None => client.set_token(Some(Token::new(trimmed))),
            Some(current) if current.expose() != wt.expose() => {
                body = Some(json!({ "token": trimmed }));
            }
            Some(_) => {}
        }
    }
    let reply = client.send("PUT", "sys/wrapping/unwrap", &[], body.as_ref(), None)?;
    if reply.status == 404 {
        let secret = crate::client::parse_secret(&reply.body).map_err(Error::Other)?;
        if let Some(s) = secret.filter(|s| {
            s.warnings.as_ref().is_some_and(|w| !w.is_empty())
                || s.data.as_ref().is_some_and(|d| !d.is_empty())
        }) {
            return Ok(Some(s));
        }
    }
    let reply = client.checked(reply)?;
    crate::client::parse_secret(&reply.body).map_err(Error::Other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwrap_args_debug_hides_the_token() {
        let a = UnwrapArgs {
            args: vec!["s.wrapping-secret".into()],
            ..UnwrapArgs::default()
        };
        assert!(!format!("{a:?}").contains("wrapping-secret"));
    }
}
