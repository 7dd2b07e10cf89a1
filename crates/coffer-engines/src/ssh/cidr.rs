//! IP addresses and CIDR lists of OTP roles, read as Go's `net.ParseIP` and `net.ParseCIDR`
//! read them (OpenBao's `validateIP`, `cidrListContainsIP` and `cidrutil`), with std types only.
//!
//! An IPv4-mapped IPv6 address (`::ffff:10.0.0.5`) is the IPv4 address, and a CIDR block
//! written that way (`::ffff:10.0.0.0/104`) is the IPv4 block, as Go's `IPNet.Contains` treats
//! them.

use std::net::IpAddr;

/// A parsed CIDR block: the address (host bits may be set, as Go allows) and the prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    addr: IpAddr,
    prefix: u32,
}

impl Cidr {
    /// Go's `net.ParseCIDR`: `address/prefix`, the prefix in decimal digits within the
    /// address family's bit length. The error is Go's text.
    pub(crate) fn parse(text: &str) -> Result<Cidr, String> {
        let invalid = || format!("invalid CIDR address: {text}");
        let (addr, prefix) = text.split_once('/').ok_or_else(invalid)?;
        let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let prefix: u32 = prefix.parse().map_err(|_| invalid())?;
        let bits = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if prefix > bits {
            return Err(invalid());
        }
        // A block written as IPv4-mapped IPv6 is matched as the IPv4 block of its last 32 bits.
        Ok(match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Cidr {
                    addr: IpAddr::V4(v4),
                    prefix: prefix.saturating_sub(96),
                },
                None => Cidr { addr, prefix },
            },
            IpAddr::V4(_) => Cidr { addr, prefix },
        })
    }

    /// Whether `ip` (canonical: see [`parse_ip`]) lies in this block; families never mix.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - self.prefix).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Go's `net.ParseIP` followed by `String()`: an IPv4-mapped address becomes IPv4, so the
/// address is both matched and echoed back in the form OpenBao answers.
pub(crate) fn parse_ip(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// OpenBao's `cidrutil.ValidateCIDRListString` on a role's `cidr_list`/`exclude_cidr_list`:
/// entries split on commas, trimmed, empty ones dropped; at least one, and every one valid.
pub(crate) fn validate_list(list: &str) -> Result<(), String> {
    let mut entries = entries(list).peekable();
    if entries.peek().is_none() {
        return Err("missing CIDR blocks that needs validation".to_owned());
    }
    entries.try_for_each(|entry| Cidr::parse(entry).map(drop))
}

/// OpenBao's `cidrListContainsIP`: an empty list holds no address (`IP does not belong to
/// role`). OpenBao splits without trimming, so a list its own role write accepted
/// (`10.0.0.0/8, 10.1.0.0/16`) later fails at `creds` with `invalid CIDR entry " 10.1.0.0/16"`;
/// coffer reads the list as the role write validated it.
pub(crate) fn list_contains(list: &str, ip: IpAddr) -> Result<bool, String> {
    if list.is_empty() {
        return Err("IP does not belong to role".to_owned());
    }
    for entry in entries(list) {
        let cidr = Cidr::parse(entry).map_err(|_| format!("invalid CIDR entry {entry:?}"))?;
        if cidr.contains(ip) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn entries(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|e| !e.is_empty())
}
