//! The tamper-evident chain (beyond OpenBao): every entry a device writes ends with
//! `"chain":{"seq":N,"prev":"<hex>","hmac":"<hex>"}`, where `hmac` is HMAC-SHA256 under the
//! device's chain key of the line as it reads without its `hmac` field, and `prev` is the `hmac`
//! of the device's previous entry (64 zeros for the first entry ever).
//!
//! So an edited or inserted line fails its own `hmac`; a deleted one leaves a gap in `seq` and
//! a `prev` that does not match; a reordered one breaks both; a cut tail is found against the
//! device's head (its last `seq` and `hmac`, from the server or an exported key file). The chain
//! continues across files: after a rotation the first entry of the new file follows the last
//! of the old one, so a series of files verifies as one.
//!
//! The chain key is derived from the device's HMAC key ([`super::entry::Hasher::derive`]), so
//! whoever verifies a log cannot use the key to test guesses against its hashed values.

use std::fmt;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The `prev` of a device's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// What the chain key is derived for.
pub const CHAIN_KEY_PURPOSE: &str = "coffer audit chain v1";

/// `,"hmac":"` + 64 hex digits + `"}}`: how every chained line ends.
const MAC_FIELD: &str = ",\"hmac\":\"";
const SUFFIX_LEN: usize = MAC_FIELD.len() + 64 + 3;

/// Where a device's chain stands: the `seq` and `hmac` of its last entry (`seq` 0 and
/// [`GENESIS`] before the first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hmac: String,
}

impl Default for Head {
    fn default() -> Self {
        Head {
            seq: 0,
            hmac: GENESIS.to_owned(),
        }
    }
}

/// Appends entries to a device's chain.
pub struct Chain {
    mac: Hmac<Sha256>,
    head: Head,
}

impl Chain {
    pub fn new(key: &SecretBox<Vec<u8>>, head: Head) -> Chain {
        Chain {
            mac: keyed(key),
            head,
        }
    }

    pub fn head(&self) -> &Head {
        &self.head
    }

    /// Goes back to `head` (entries sealed after it were not written).
    pub fn reset(&mut self, head: Head) {
        self.head = head;
    }

    /// Turns `entry` (a JSON object) into the next line of the chain, newline included, and
    /// advances the head.
    pub fn seal(&mut self, entry: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        let body = entry
            .strip_suffix(b"}")
            .expect("an audit entry is a serialized JSON object");
        let seq = self.head.seq + 1;
        out.extend_from_slice(body);
        if body.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(b"\"chain\":{\"seq\":");
        std::io::Write::write_fmt(out, format_args!("{seq}")).expect("a Vec takes any write");
        out.extend_from_slice(b",\"prev\":\"");
        out.extend_from_slice(self.head.hmac.as_bytes());
        out.extend_from_slice(b"\"}}");
        let mut mac = self.mac.clone();
        mac.update(&out[start..]);
        // The head's hmac string is reused for the new tag (no allocation per entry).
        self.head.hmac.clear();
        super::entry::push_hex(&mut self.head.hmac, &mac.finalize().into_bytes());
        self.head.seq = seq;
        out.truncate(out.len() - 2);
        out.extend_from_slice(MAC_FIELD.as_bytes());
        out.extend_from_slice(self.head.hmac.as_bytes());
        out.extend_from_slice(b"\"}}\n");
    }
}

/// The chain fields of one line, if it is a chained entry.
pub fn parse_line(line: &str) -> Option<(u64, String, String)> {
    let (signed, tag) = split(line)?;
    let (seq, prev) = chain_fields(&signed)?;
    Some((seq, prev, tag.to_owned()))
}

/// One file of a series to verify.
pub struct Segment<'a> {
    pub name: &'a str,
    pub text: &'a str,
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every entry is authentic and in order; `first_seq` > 1 means the series continues an
    /// earlier file that was not given.
    Ok {
        entries: u64,
        first_seq: u64,
        head: Head,
    },
    /// The first problem, at `name:line`.
    Broken {
        name: String,
        line: usize,
        problem: Problem,
    },
}

/// The kinds of tampering the chain reveals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Not a chained entry at all (an inserted line, or one edited beyond recognition).
    Malformed,
    /// The line's own hmac does not verify: edited, inserted, or made with another key.
    Modified,
    /// `missing` entries before this line are gone.
    Deleted { missing: u64 },
    /// The entry is not where its sequence number says it belongs.
    Reordered { seq: u64, expected: u64 },
    /// The line is authentic but does not follow the previous one (e.g. a file of another
    /// device or another chain spliced in).
    Unlinked,
    /// The log ends at `last` but the device wrote `head`: the tail was cut off (or the later
    /// files of the series were not given).
    Truncated { last: u64, head: u64 },
    /// The device's head entry is in the log, but with another hmac.
    HeadMismatch { seq: u64 },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Malformed => f.write_str("not a chained audit entry (inserted or edited)"),
            Problem::Modified => {
                f.write_str("entry was modified or inserted (its hmac does not verify)")
            }
            Problem::Deleted { missing } => {
                write!(
                    f,
                    "{missing} entr{} deleted before this line",
                    plural_y(*missing)
                )
            }
            Problem::Reordered { seq, expected } => write!(
                f,
                "entries reordered: this is entry {seq}, entry {expected} was expected here"
            ),
            Problem::Unlinked => f.write_str(
                "entry does not follow the previous one (chain broken: spliced or replaced)",
            ),
            Problem::Truncated { last, head } => write!(
                f,
                "the log ends at entry {last} but the device has written {head}: {} entr{} \
                 cut off the tail (or later files of the series are missing)",
                head - last,
                plural_y(head - last)
            ),
            Problem::HeadMismatch { seq } => write!(
                f,
                "entry {seq} is not the one the device wrote (head hmac differs)"
            ),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Ok {
                entries, first_seq, ..
            } => {
                write!(f, "OK: {entries} entries")?;
                if *first_seq > 1 {
                    write!(
                        f,
                        " (from entry {first_seq}: the chain continues an earlier file)"
                    )?;
                }
                Ok(())
            }
            Verdict::Broken {
                name,
                line,
                problem,
            } => write!(f, "FAILED: {name}:{line}: {problem}"),
        }
    }
}

/// Verifies a series of files, given in order, under the chain key; `head`, when known,
/// is where the device's chain stood (to find a cut tail). Empty lines are ignored.
pub fn verify(key: &SecretBox<Vec<u8>>, segments: &[Segment<'_>], head: Option<&Head>) -> Verdict {
    let mac = keyed(key);
    // First pass: every line's chain fields and authenticity; the second classifies, knowing
    // which sequence numbers exist later (to tell a reorder from a deletion).
    struct Line<'a> {
        name: &'a str,
        number: usize,
        fields: Option<(u64, String, String)>,
        authentic: bool,
    }
    let mut lines = Vec::new();
    for seg in segments {
        for (i, text) in seg.text.split('\n').enumerate() {
            if text.trim().is_empty() {
                continue;
            }
            let (fields, authentic) = match split(text) {
                Some((signed, tag)) => {
                    let mut m = mac.clone();
                    m.update(signed.as_bytes());
                    let expected = hex::encode(m.finalize().into_bytes());
                    let authentic: bool = expected.as_bytes().ct_eq(tag.as_bytes()).into();
                    (
                        chain_fields(&signed).map(|(s, p)| (s, p, tag.to_owned())),
                        authentic,
                    )
                }
                None => (None, false),
            };
            lines.push(Line {
                name: seg.name,
                number: i + 1,
                fields,
                authentic,
            });
        }
    }
    let broken = |l: &Line<'_>, problem| Verdict::Broken {
        name: l.name.to_owned(),
        line: l.number,
        problem,
    };
    let seqs: std::collections::HashSet<u64> = lines
        .iter()
        .filter(|l| l.authentic)
        .filter_map(|l| l.fields.as_ref().map(|f| f.0))
        .collect();
    let mut last: Option<(u64, String)> = None;
    let mut first_seq = 0;
    let mut head_seen = false;
    for (idx, l) in lines.iter().enumerate() {
        let Some((seq, prev, tag)) = &l.fields else {
            return broken(l, Problem::Malformed);
        };
        if !l.authentic {
            return broken(l, Problem::Modified);
        }
        match &last {
            None => {
                first_seq = *seq;
                if *seq == 1 && prev != GENESIS {
                    return broken(l, Problem::Unlinked);
                }
            }
            Some((last_seq, last_tag)) => {
                let expected = last_seq + 1;
                if *seq == expected && prev != last_tag {
                    return broken(l, Problem::Unlinked);
                }
                if *seq != expected {
                    let later = lines[idx..]
                        .iter()
                        .any(|o| o.fields.as_ref().is_some_and(|f| f.0 == expected));
                    if *seq < expected || later {
                        return broken(
                            l,
                            Problem::Reordered {
                                seq: *seq,
                                expected,
                            },
                        );
                    }
                    // A gap, filled nowhere: deleted (unless a later entry of the gap exists,
                    // which the reorder check above caught).
                    let missing = (expected..*seq).filter(|s| !seqs.contains(s)).count() as u64;
                    return broken(l, Problem::Deleted { missing });
                }
            }
        }
        if let Some(h) = head {
            if h.seq == *seq {
                head_seen = true;
                if !bool::from(h.hmac.as_bytes().ct_eq(tag.as_bytes())) {
                    return broken(l, Problem::HeadMismatch { seq: *seq });
                }
            }
        }
        last = Some((*seq, tag.clone()));
    }
    let (last_seq, last_tag) = last.unwrap_or((0, GENESIS.to_owned()));
    if let Some(h) = head {
        if h.seq > last_seq && !head_seen {
            let (name, line) = lines
                .last()
                .map(|l| (l.name.to_owned(), l.number))
                .or_else(|| segments.last().map(|s| (s.name.to_owned(), 0)))
                .unwrap_or_default();
            return Verdict::Broken {
                name,
                line,
                problem: Problem::Truncated {
                    last: last_seq,
                    head: h.seq,
                },
            };
        }
    }
    Verdict::Ok {
        entries: lines.len() as u64,
        first_seq: first_seq.max(1),
        head: Head {
            seq: last_seq,
            hmac: last_tag,
        },
    }
}

fn keyed(key: &SecretBox<Vec<u8>>) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key.expose_secret()).expect("HMAC accepts any key length")
}

/// Splits a line into the text its hmac covers and the hmac.
fn split(line: &str) -> Option<(String, &str)> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.len() < SUFFIX_LEN || !line.is_char_boundary(line.len() - SUFFIX_LEN) {
        return None;
    }
    let (body, suffix) = line.split_at(line.len() - SUFFIX_LEN);
    let tag = suffix.strip_prefix(MAC_FIELD)?.strip_suffix("\"}}")?;
    if !tag.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((format!("{body}}}}}"), tag))
}

/// `seq` and `prev` of a signed line (a JSON object whose last field is `chain`).
fn chain_fields(signed: &str) -> Option<(u64, String)> {
    #[derive(Deserialize)]
    struct Fields {
        chain: ChainFields,
    }
    #[derive(Deserialize)]
    struct ChainFields {
        seq: u64,
        prev: String,
    }
    let f: Fields = serde_json::from_str(signed).ok()?;
    Some((f.chain.seq, f.chain.prev))
}

fn plural_y(n: u64) -> &'static str {
    if n == 1 {
        "y"
    } else {
        "ies"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SecretBox<Vec<u8>> {
        SecretBox::new(Box::new(vec![7u8; 32]))
    }

    fn log(n: usize) -> Vec<String> {
        let mut chain = Chain::new(&key(), Head::default());
        (0..n)
            .map(|i| {
                let mut out = Vec::new();
                chain.seal(
                    format!("{{\"type\":\"request\",\"i\":{i}}}").as_bytes(),
                    &mut out,
                );
                String::from_utf8(out).unwrap()
            })
            .collect()
    }

    fn check(lines: &[String], head: Option<&Head>) -> Verdict {
        let text = lines.concat();
        verify(
            &key(),
            &[Segment {
                name: "audit.log",
                text: &text,
            }],
            head,
        )
    }

    fn problem(v: Verdict) -> (usize, Problem) {
        match v {
            Verdict::Broken { line, problem, .. } => (line, problem),
            ok => panic!("expected a broken chain, got {ok}"),
        }
    }

    #[test]
    fn sealed_lines_are_json_with_the_chain_last() {
        let lines = log(2);
        let v: serde_json::Value = serde_json::from_str(lines[1].trim_end()).unwrap();
        assert_eq!(v["chain"]["seq"], 2);
        let first: serde_json::Value = serde_json::from_str(lines[0].trim_end()).unwrap();
        assert_eq!(v["chain"]["prev"], first["chain"]["hmac"]);
        assert_eq!(first["chain"]["prev"], GENESIS);
        assert_eq!(parse_line(lines[1].trim_end()).unwrap().0, 2);
    }

    #[test]
    fn intact_log_verifies() {
        let lines = log(5);
        let v = check(&lines, None);
        assert_eq!(v.to_string(), "OK: 5 entries");
    }

    #[test]
    fn edit_is_found_at_its_line() {
        let mut lines = log(5);
        lines[2] = lines[2].replace("\"i\":2", "\"i\":9");
        assert_eq!(problem(check(&lines, None)), (3, Problem::Modified));
    }

    #[test]
    fn deletion_is_found() {
        let mut lines = log(5);
        lines.remove(2);
        assert_eq!(
            problem(check(&lines, None)),
            (3, Problem::Deleted { missing: 1 })
        );
    }

    #[test]
    fn swap_is_found() {
        let mut lines = log(5);
        lines.swap(1, 2);
        assert_eq!(
            problem(check(&lines, None)),
            (
                2,
                Problem::Reordered {
                    seq: 3,
                    expected: 2
                }
            )
        );
    }

    #[test]
    fn insertion_of_a_copy_is_found() {
        let mut lines = log(4);
        let copy = lines[1].clone();
        lines.insert(3, copy);
        assert!(matches!(
            problem(check(&lines, None)),
            (4, Problem::Reordered { seq: 2, .. })
        ));
        let mut lines = log(3);
        lines.insert(1, "{\"type\":\"request\"}\n".into());
        assert_eq!(problem(check(&lines, None)), (2, Problem::Malformed));
    }

    #[test]
    fn cut_tail_is_found_against_the_head() {
        let lines = log(5);
        let Verdict::Ok { head, .. } = check(&lines, None) else {
            panic!("intact");
        };
        assert_eq!(head.seq, 5);
        let cut = &lines[..3];
        assert_eq!(
            problem(check(cut, Some(&head))),
            (3, Problem::Truncated { last: 3, head: 5 })
        );
        assert!(matches!(check(&lines, Some(&head)), Verdict::Ok { .. }));
    }

    #[test]
    fn wrong_key_fails() {
        let lines = log(2);
        let text = lines.concat();
        let other = SecretBox::new(Box::new(vec![8u8; 32]));
        let v = verify(
            &other,
            &[Segment {
                name: "a",
                text: &text,
            }],
            None,
        );
        assert_eq!(problem(v), (1, Problem::Modified));
    }

    #[test]
    fn series_of_files_verifies_and_a_missing_middle_file_is_found() {
        let lines = log(6);
        let (a, b, c) = (
            lines[..2].concat(),
            lines[2..4].concat(),
            lines[4..].concat(),
        );
        let seg = |name, text| Segment { name, text };
        let ok = verify(&key(), &[seg("a", &a), seg("b", &b), seg("c", &c)], None);
        assert_eq!(ok.to_string(), "OK: 6 entries");
        let gap = verify(&key(), &[seg("a", &a), seg("c", &c)], None);
        assert_eq!(
            gap,
            Verdict::Broken {
                name: "c".into(),
                line: 1,
                problem: Problem::Deleted { missing: 2 }
            }
        );
        let later = verify(&key(), &[seg("c", &c)], None);
        assert_eq!(
            later.to_string(),
            "OK: 2 entries (from entry 5: the chain continues an earlier file)"
        );
    }
}
