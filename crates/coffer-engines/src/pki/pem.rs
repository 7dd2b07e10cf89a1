//! PEM framing (RFC 7468): splitting a bundle into labelled DER blocks with x509-parser's
//! reader, and writing blocks with 64-column base64 as Go's `encoding/pem` does.

use base64::Engine as _;
use coffer_sdk::Error;
use zeroize::Zeroizing;

/// One PEM block; the DER is wiped on drop, since a bundle may carry a private key.
pub(crate) struct Block {
    pub(crate) label: String,
    pub(crate) der: Zeroizing<Vec<u8>>,
}

/// Every block of `text`, in order. Text between blocks is ignored, as Go's `pem.Decode` does.
pub(crate) fn blocks(text: &str) -> Result<Vec<Block>, Error> {
    let mut out = Vec::new();
    for item in x509_parser::pem::Pem::iter_from_buffer(text.as_bytes()) {
        match item {
            Ok(pem) => out.push(Block {
                label: pem.label,
                der: Zeroizing::new(pem.contents),
            }),
            Err(x509_parser::error::PEMError::MissingHeader) => break,
            Err(_) => return Err(Error::invalid("error parsing PEM bundle: malformed PEM")),
        }
    }
    Ok(out)
}

/// `der` framed as a PEM block with `label`, ending in a newline-free last line as OpenBao
/// returns certificates (no trailing newline).
pub(crate) fn encode(label: &str, der: &[u8]) -> Zeroizing<String> {
    let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der));
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----");
    Zeroizing::new(out)
}

/// A certificate as PEM (public: no zeroizing needed).
pub(crate) fn cert(der: &[u8]) -> String {
    encode("CERTIFICATE", der).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_parse_round_trips_several_blocks() {
        let a = encode("CERTIFICATE", &[1u8; 100]);
        let b = encode("EC PRIVATE KEY", &[2u8; 7]);
        assert!(a.lines().all(|l| l.len() <= 64));
        let text = format!("junk\n{}\n{}\n", *a, *b);
        let parsed = blocks(&text).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].label, "CERTIFICATE");
        assert_eq!(&parsed[0].der[..], &[1u8; 100][..]);
        assert_eq!(parsed[1].label, "EC PRIVATE KEY");
        assert!(blocks("no pem here").unwrap().is_empty());
    }
}
