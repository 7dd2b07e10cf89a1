//! Request path checks: decoding, cleaning and limits, before anything is routed.

/// The longest API path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 8 * 1024;

/// What to do with a raw request path.
#[derive(Debug, PartialEq, Eq)]
pub enum PathCheck {
    /// Serve this logical path (without `/v1/`).
    Serve(String),
    /// Redirect (307) to the cleaned path, as OpenBao does for `//` and `/./`.
    Redirect(String),
    /// Refuse with 400 and this message.
    Invalid(&'static str),
}

/// Decodes and checks the part of a request path after `/v1/`.
pub fn check(raw: &str) -> PathCheck {
    let Ok(decoded) = percent_decode(raw) else {
        return PathCheck::Invalid("invalid path encoding");
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return PathCheck::Invalid("path is not valid UTF-8");
    };
    if decoded.chars().any(char::is_control) {
        return PathCheck::Invalid("path contains control characters");
    }
    let segments: Vec<&str> = decoded.split('/').collect();
    if segments.contains(&"..") {
        return PathCheck::Invalid("invalid path: \"..\" is not allowed");
    }
    let trailing = decoded.ends_with('/');
    let kept: Vec<&str> = segments
        .iter()
        .copied()
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    let mut clean = kept.join("/");
    if trailing && !clean.is_empty() {
        clean.push('/');
    }
    if clean != decoded {
        return PathCheck::Redirect(clean);
    }
    PathCheck::Serve(decoded)
}

fn percent_decode(raw: &str) -> Result<Vec<u8>, ()> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(())?;
            let s = std::str::from_utf8(hex).map_err(|_| ())?;
            out.push(u8::from_str_radix(s, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths_are_served() {
        assert_eq!(
            check("secret/data/a"),
            PathCheck::Serve("secret/data/a".into())
        );
        assert_eq!(
            check("secret/metadata/"),
            PathCheck::Serve("secret/metadata/".into())
        );
        assert_eq!(
            check("secret/data/a%20b"),
            PathCheck::Serve("secret/data/a b".into())
        );
    }

    #[test]
    fn dirty_paths_redirect_and_dot_dot_is_refused() {
        assert_eq!(
            check("secret//data/a"),
            PathCheck::Redirect("secret/data/a".into())
        );
        assert_eq!(
            check("secret/./data/a"),
            PathCheck::Redirect("secret/data/a".into())
        );
        assert!(matches!(
            check("secret/../sys/mounts"),
            PathCheck::Invalid(_)
        ));
        assert!(matches!(check("secret/%2e%2e/sys"), PathCheck::Invalid(_)));
        assert!(matches!(check("secret/%ff"), PathCheck::Invalid(_)));
        assert!(matches!(check("secret/%zz"), PathCheck::Invalid(_)));
    }
}
