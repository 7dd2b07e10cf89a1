//! Key arithmetic shared by the stores: the bounds of a prefix range and the child a key names
//! under a prefix. Keys compare bytewise (UTF-8 order equals code point order), as SQLite's
//! BINARY collation and Rust's `str` ordering both do, so every store lists in the same order.

/// The smallest string greater than every string that starts with `prefix`, or `None` when no
/// such bound exists (the empty prefix, or one made only of `char::MAX`).
pub(crate) fn upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = next_char(last) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// What `key` contributes to a listing of `prefix`: its remaining name when it sits directly
/// under the prefix, or its next segment with a trailing `/` when it is deeper. `None` when
/// the key is not under the prefix or is the prefix itself.
pub(crate) fn child<'k>(prefix: &str, key: &'k str) -> Option<Child<'k>> {
    let rest = key.strip_prefix(prefix)?;
    if rest.is_empty() {
        return None;
    }
    Some(match rest.find('/') {
        Some(i) => Child::Dir(&rest[..=i]),
        None => Child::Leaf(rest),
    })
}

/// One entry of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Child<'k> {
    /// A key directly under the prefix.
    Leaf(&'k str),
    /// The first segment of deeper keys, ending in `/`: the listing skips its whole subtree,
    /// which starts at `prefix + dir` and ends before `upper_bound(prefix + dir)`.
    Dir(&'k str),
}

/// The key right after the subtree `prefix + dir` (`dir` ends in `/`): every key of the
/// subtree sorts below it and every later sibling at or above it.
pub(crate) fn after_subtree(prefix: &str, dir: &str) -> String {
    debug_assert!(dir.ends_with('/'));
    let mut s = String::with_capacity(prefix.len() + dir.len());
    s.push_str(prefix);
    s.push_str(&dir[..dir.len() - 1]);
    // '/' + 1 = '0': the subtree "a/b/..." ends before "a/b0".
    s.push('0');
    s
}

fn next_char(c: char) -> Option<char> {
    match c {
        char::MAX => None,
        // Skip the surrogate gap, which holds no `char`.
        '\u{D7FF}' => Some('\u{E000}'),
        c => char::from_u32(c as u32 + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bound_of_a_directory_prefix_replaces_the_slash() {
        assert_eq!(upper_bound("a/b/").as_deref(), Some("a/b0"));
        assert_eq!(upper_bound("").as_deref(), None);
        assert_eq!(upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(upper_bound("\u{D7FF}").as_deref(), Some("\u{E000}"));
    }

    #[test]
    fn upper_bound_is_above_every_extension_and_below_the_next_sibling() {
        let ub = upper_bound("a/").unwrap();
        for k in ["a/", "a/x", "a/\u{10FFFF}", "a/z/z"] {
            assert!(k < ub.as_str(), "{k}");
        }
        for k in ["a0", "a00", "b"] {
            assert!(k >= ub.as_str(), "{k}");
        }
    }

    #[test]
    fn child_names_leaves_and_directories() {
        assert_eq!(child("a/", "a/b"), Some(Child::Leaf("b")));
        assert_eq!(child("a/", "a/b/c/d"), Some(Child::Dir("b/")));
        assert_eq!(child("a/", "a/"), None);
        assert_eq!(child("a/", "ab"), None);
        assert_eq!(child("", "x/y"), Some(Child::Dir("x/")));
    }

    #[test]
    fn after_subtree_skips_exactly_the_subtree() {
        let after = after_subtree("a/", "b/");
        assert_eq!(after, "a/b0");
        assert!("a/b/zzz" < after.as_str());
        assert!("a/b." < "a/b/" && "a/bc" > after.as_str());
    }
}
