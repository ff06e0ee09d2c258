//! Client addresses: trusted-proxy networks, and the key rate limits count under.

use std::net::{IpAddr, Ipv6Addr};

/// An IP network (`10.0.0.0/8`, `fd00::/8`, or a single address). IPv4-mapped IPv6 addresses
/// (`::ffff:a.b.c.d`) are treated as the IPv4 address they carry, in networks and in addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(s: &str) -> Option<Self> {
        let (addr, prefix) = s.trim().split_once('/').map_or((s.trim(), None), |(a, p)| (a, Some(p)));
        let parsed: IpAddr = addr.parse().ok()?;
        let addr = parsed.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                let p: u8 = p.parse().ok()?;
                // A mapped network (`::ffff:10.0.0.0/104`) counts its prefix within the IPv4 part.
                let p = if parsed.is_ipv6() && addr.is_ipv4() { p.checked_sub(96)? } else { p };
                (p <= max).then_some(p)?
            }
        };
        Some(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(u128::from(u32::from(n)), 32, self.prefix) == masked(u128::from(u32::from(a)), 32, self.prefix)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                masked(u128::from(n), 128, self.prefix) == masked(u128::from(a), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// The top `prefix` bits of a `bits`-wide address.
fn masked(value: u128, bits: u32, prefix: u8) -> u128 {
    let keep = u32::from(prefix).min(bits);
    if keep == 0 {
        0
    } else {
        value >> (bits - keep)
    }
}

/// What per-client limits count under: an IPv4 address as it is (mapped ones unwrapped), an
/// IPv6 address by its /64, since one subscriber or host usually holds a whole /64.
pub fn rate_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 @ IpAddr::V4(_) => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::{rate_key, IpNet};

    #[test]
    fn networks_match_v4_v6_and_mapped_addresses() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        let net = |s: &str| IpNet::parse(s).unwrap();
        assert!(net("10.0.0.0/8").contains(ip("10.20.30.40")));
        assert!(net("10.0.0.0/8").contains(ip("::ffff:10.20.30.40")));
        assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(net("10.0.0.2").contains(ip("10.0.0.2")) && !net("10.0.0.2").contains(ip("10.0.0.3")));
        assert!(net("::ffff:192.0.2.0/120").contains(ip("192.0.2.77")));
        assert!(net("fd00::/8").contains(ip("fd12:3456::1")) && !net("fd00::/8").contains(ip("fe80::1")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.1")) && !net("0.0.0.0/0").contains(ip("2001:db8::1")));
        assert!(IpNet::parse("10.0.0.0/33").is_none() && IpNet::parse("proxy.local").is_none());
        assert_eq!(rate_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(rate_key(ip("2001:db8:1:2:bbbb::9")), rate_key(ip("2001:db8:1:2::1")));
        assert_eq!(rate_key(ip("::ffff:198.51.100.7")), ip("198.51.100.7"));
    }
}
