//! The one-time password arithmetic and the key's outside forms, as pquerna/otp (which OpenBao
//! uses) computes them: RFC 6238 codes over HMAC-SHA1/256/512 (`hmac`, `sha1`, `sha2`), base32
//! secrets, the `otpauth://` URL and its QR code as a PNG.
//!
//! Nothing here touches storage or requests; secrets are borrowed and never printed.

use data_encoding::{BASE32, BASE32_NOPAD};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// HMAC of the big-endian counter under `secret` with hash `$hash`.
macro_rules! hmac_counter {
    ($hash:ty, $secret:expr, $counter:expr) => {{
        let mut mac =
            <Hmac<$hash> as Mac>::new_from_slice($secret).expect("HMAC accepts keys of any length");
        mac.update(&$counter.to_be_bytes());
        Zeroizing::new(mac.finalize().into_bytes().to_vec())
    }};
}

/// The HMAC hash of a key. Stored as pquerna/otp's `Algorithm` integer, as OpenBao stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub(crate) enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    /// `SHA1`, `SHA256` or `SHA512`, exactly (OpenBao's switch is case-sensitive).
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "SHA1" => Some(Algorithm::Sha1),
            "SHA256" => Some(Algorithm::Sha256),
            "SHA512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }
}

impl From<Algorithm> for u8 {
    fn from(alg: Algorithm) -> u8 {
        match alg {
            Algorithm::Sha1 => 0,
            Algorithm::Sha256 => 1,
            Algorithm::Sha512 => 2,
        }
    }
}

impl TryFrom<u8> for Algorithm {
    type Error = String;

    fn try_from(value: u8) -> Result<Self, String> {
        match value {
            0 => Ok(Algorithm::Sha1),
            1 => Ok(Algorithm::Sha256),
            2 => Ok(Algorithm::Sha512),
            other => Err(format!("unknown TOTP algorithm {other}")),
        }
    }
}

/// Decodes a stored or imported secret as pquerna/otp does: trimmed, padded to a multiple of
/// eight with `=`, upper-cased, standard base32. The error is Go's text for the first bad byte.
pub(crate) fn decode_secret(secret: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut padded = Zeroizing::new(secret.trim().to_ascii_uppercase());
    let rem = padded.len() % 8;
    if rem != 0 {
        padded.push_str(&"=".repeat(8 - rem));
    }
    BASE32
        .decode(padded.as_bytes())
        .map(Zeroizing::new)
        .map_err(|e| format!("illegal base32 data at input byte {}", e.position))
}

/// Base32 without padding, as pquerna/otp prints generated secrets.
pub(crate) fn encode_secret(secret: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(BASE32_NOPAD.encode(secret))
}

/// The code for Unix time `unix` (RFC 6238: HOTP over the counter `unix / period`), zero-padded
/// to `digits`.
pub(crate) fn code_at(
    secret: &[u8],
    unix: u64,
    period: u64,
    digits: u32,
    alg: Algorithm,
) -> String {
    let counter = unix / period.max(1);
    let mac = match alg {
        Algorithm::Sha1 => hmac_counter!(sha1::Sha1, secret, counter),
        Algorithm::Sha256 => hmac_counter!(sha2::Sha256, secret, counter),
        Algorithm::Sha512 => hmac_counter!(sha2::Sha512, secret, counter),
    };
    // RFC 4226 §5.3 dynamic truncation.
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = (u32::from(mac[offset]) & 0x7f) << 24
        | u32::from(mac[offset + 1]) << 16
        | u32::from(mac[offset + 2]) << 8
        | u32::from(mac[offset + 3]);
    let value = binary % 10u32.pow(digits);
    format!("{value:0width$}", width = digits as usize)
}

/// Whether `code` is the code of any period from `skew` before to `skew` after `unix`, as
/// pquerna/otp's `ValidateCustom`; every candidate is compared in constant time.
pub(crate) fn validate(
    code: &str,
    secret: &[u8],
    unix: u64,
    period: u64,
    skew: u64,
    digits: u32,
    alg: Algorithm,
) -> bool {
    let mut valid = subtle::Choice::from(0);
    for step in 0..=2 * skew {
        let Some(t) = (unix + step * period).checked_sub(skew * period) else {
            continue;
        };
        let expected = code_at(secret, t, period, digits, alg);
        valid |= expected.as_bytes().ct_eq(code.as_bytes());
    }
    valid.into()
}

/// The `otpauth://totp/...` URL of a key, byte for byte as pquerna/otp's `Key.String()`: the
/// label `issuer:account` path-escaped, then the parameters sorted by name, each value escaped
/// as Go's `url.PathEscape`.
pub(crate) fn otpauth_url(
    issuer: &str,
    account: &str,
    secret_b32: &str,
    period: u64,
    digits: u32,
    alg: Algorithm,
) -> Zeroizing<String> {
    let label = go_escape(&format!("/{issuer}:{account}"), EscapeMode::Path);
    let params = [
        ("algorithm", alg.as_str().to_owned()),
        ("digits", digits.to_string()),
        ("issuer", issuer.to_owned()),
        ("period", period.to_string()),
        ("secret", secret_b32.to_owned()),
    ];
    let query = params
        .iter()
        .map(|(k, v)| format!("{k}={}", go_escape(v, EscapeMode::PathSegment)))
        .collect::<Vec<_>>()
        .join("&");
    Zeroizing::new(format!("otpauth://totp{label}?{query}"))
}

/// What an imported `otpauth://` URL holds, read as OpenBao reads it.
pub(crate) struct ParsedUrl {
    pub(crate) issuer: Option<String>,
    pub(crate) account: String,
    pub(crate) secret: Zeroizing<String>,
    pub(crate) period: Option<String>,
    pub(crate) digits: Option<String>,
    pub(crate) algorithm: Option<String>,
}

/// Parses an imported URL: the path (without its leading `/`) is `issuer:account` or just the
/// account; the `issuer` parameter wins over the label's issuer. `None` if it is no URL.
pub(crate) fn parse_url(input: &str) -> Option<ParsedUrl> {
    let parsed = match url::Url::parse(input) {
        Ok(url) => url,
        // Go's url.Parse takes a string without a scheme as a relative path.
        Err(url::ParseError::RelativeUrlWithoutBase) if !input.starts_with(':') => {
            url::Url::parse("relative:///").ok()?.join(input).ok()?
        }
        Err(_) => return None,
    };
    let path = percent_decode(parsed.path());
    let path = path.strip_prefix('/').unwrap_or(&path).to_owned();
    let query = |name: &str| {
        parsed
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let (label_issuer, account) = match path.split_once(':') {
        Some((issuer, account)) => (Some(issuer.to_owned()), account.to_owned()),
        None => (None, path.clone()),
    };
    let issuer = query("issuer").filter(|s| !s.is_empty()).or(label_issuer);
    Some(ParsedUrl {
        issuer,
        account,
        secret: Zeroizing::new(query("secret").unwrap_or_default()),
        period: query("period").filter(|s| !s.is_empty()),
        digits: query("digits").filter(|s| !s.is_empty()),
        algorithm: query("algorithm").filter(|s| !s.is_empty()),
    })
}

/// The QR code of `text` as a `size`×`size` PNG, as boombuler/barcode draws it for OpenBao:
/// error correction M, no quiet zone, scaled by the largest whole factor and centred on white.
pub(crate) fn qr_png(text: &str, size: u32) -> Result<Vec<u8>, String> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| format!("failed to generate QR code image: {e}"))?;
    let modules = code.width() as u32;
    let factor = size / modules;
    if factor == 0 {
        return Err(format!(
            "failed to generate QR code image: can not scale barcode to an image smaller than \
             {modules}x{modules}"
        ));
    }
    let offset = (size - modules * factor) / 2;
    let colors = code.to_colors();
    let mut pixels = vec![0xffu8; (size * size) as usize];
    for y in 0..modules * factor {
        for x in 0..modules * factor {
            let module = colors[((y / factor) * modules + x / factor) as usize];
            if module == qrcode::Color::Dark {
                pixels[((y + offset) * size + x + offset) as usize] = 0;
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, size, size);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| e.to_string())?;
    }
    Ok(out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum EscapeMode {
    /// Go's `encodePath`: only `?` among the reserved characters is escaped.
    Path,
    /// Go's `encodePathSegment` (`url.PathEscape`): `/`, `;`, `,` and `?` are escaped too.
    PathSegment,
}

/// Go's `net/url` escaping for the two modes pquerna/otp's URL goes through.
fn go_escape(input: &str, mode: EscapeMode) -> String {
    let mut out = String::with_capacity(input.len());
    for b in input.bytes() {
        let keep = match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => true,
            b'$' | b'&' | b'+' | b'=' | b':' | b'@' => true,
            b'/' | b';' | b',' => mode == EscapeMode::Path,
            _ => false,
        };
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: the seeds are ASCII "1234567890" repeated to the hash's length.
    #[test]
    fn rfc6238_test_vectors() {
        let sha1 = b"12345678901234567890";
        let sha256 = b"12345678901234567890123456789012";
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234";
        let cases: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        for (t, c1, c256, c512) in cases {
            assert_eq!(code_at(sha1, t, 30, 8, Algorithm::Sha1), c1, "t={t}");
            assert_eq!(code_at(sha256, t, 30, 8, Algorithm::Sha256), c256, "t={t}");
            assert_eq!(code_at(sha512, t, 30, 8, Algorithm::Sha512), c512, "t={t}");
        }
        assert_eq!(code_at(sha1, 59, 30, 6, Algorithm::Sha1), "287082");
    }

    #[test]
    fn validate_honours_skew_both_ways() {
        let secret = b"12345678901234567890";
        let now = 1_234_567_890;
        let prev = code_at(secret, now - 30, 30, 6, Algorithm::Sha1);
        let next = code_at(secret, now + 30, 30, 6, Algorithm::Sha1);
        let far = code_at(secret, now - 60, 30, 6, Algorithm::Sha1);
        assert!(validate(&prev, secret, now, 30, 1, 6, Algorithm::Sha1));
        assert!(validate(&next, secret, now, 30, 1, 6, Algorithm::Sha1));
        assert!(!validate(&prev, secret, now, 30, 0, 6, Algorithm::Sha1));
        assert!(!validate(&far, secret, now, 30, 1, 6, Algorithm::Sha1));
        assert!(!validate("12345", secret, now, 30, 1, 6, Algorithm::Sha1));
    }

    #[test]
    fn secrets_decode_as_go_does() {
        assert_eq!(
            &*decode_secret("jbswy3dpehpk3pxp").unwrap(),
            b"Hello!\xde\xad\xbe\xef"
        );
        assert_eq!(
            decode_secret("abc1").unwrap_err(),
            "illegal base32 data at input byte 3"
        );
        assert_eq!(
            decode_secret("!!!!").unwrap_err(),
            "illegal base32 data at input byte 0"
        );
        assert_eq!(
            &*encode_secret(b"Hello!\xde\xad\xbe\xef"),
            "JBSWY3DPEHPK3PXP"
        );
    }

    #[test]
    fn url_matches_openbao_byte_for_byte() {
        // Produced by OpenBao 2.7.2 for issuer "Vault Co", account "a b@x.com".
        let url = otpauth_url(
            "Vault Co",
            "a b@x.com",
            "DLOW5RIL63L7RF43NMMFSXCCAUDO3ADH",
            30,
            6,
            Algorithm::Sha1,
        );
        assert_eq!(
            &*url,
            "otpauth://totp/Vault%20Co:a%20b@x.com?algorithm=SHA1&digits=6&issuer=Vault%20Co\
             &period=30&secret=DLOW5RIL63L7RF43NMMFSXCCAUDO3ADH"
        );
        let parsed = parse_url(&url).unwrap();
        assert_eq!(parsed.issuer.as_deref(), Some("Vault Co"));
        assert_eq!(parsed.account, "a b@x.com");
        assert_eq!(&*parsed.secret, "DLOW5RIL63L7RF43NMMFSXCCAUDO3ADH");
        assert_eq!(parsed.period.as_deref(), Some("30"));
    }

    #[test]
    fn url_label_issuer_is_used_without_the_parameter() {
        let parsed = parse_url("otpauth://totp/ACME:bob?secret=JBSWY3DPEHPK3PXP").unwrap();
        assert_eq!(parsed.issuer.as_deref(), Some("ACME"));
        assert_eq!(parsed.account, "bob");
        assert!(parsed.digits.is_none());
        let bare = parse_url("otpauth://totp/bob?secret=X").unwrap();
        assert_eq!(bare.issuer, None);
        assert_eq!(bare.account, "bob");
        assert!(parse_url("::::").is_none());
    }

    #[test]
    fn qr_png_is_a_square_png_of_the_asked_size() {
        let png_bytes = qr_png("otpauth://totp/x:y?secret=AAAA", 200).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(&png_bytes));
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (200, 200));
        assert!(qr_png("otpauth://totp/x:y?secret=AAAA", 10)
            .unwrap_err()
            .contains("can not scale barcode"));
    }
}
