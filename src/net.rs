//! Client addresses: the trusted proxy ranges of `server.trusted_proxies`, and the key a client
//! is limited by.
//!
//! - A peer that arrives as an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`, what a `[::]`
//!   listener reports for an IPv4 connection) is the IPv4 address: see [`canonical`].
//! - One IPv6 host usually holds a whole /64, so rate limits and sign-in lockouts count an IPv6
//!   client by its /64 ([`client_key`]); otherwise every new address would be a fresh client.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};

use crate::clock::{Clock, SystemClock};

/// The address, with an IPv4-mapped IPv6 address turned into the IPv4 one.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// What rate limits and lockouts count a client by: the IPv4 address, or the /64 of an IPv6
/// address (its low 64 bits cleared). Cheap and `Copy`: it runs on every request.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
    }
}

/// [`client_key`] as text, for keys stored in the database: `192.0.2.1` or `2001:db8:1:2::/64`.
pub fn client_key_text(ip: IpAddr) -> String {
    match client_key(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("{v6}/64"),
    }
}

/// One entry of `server.trusted_proxies`: an address (`127.0.0.1`, `::1`) or a CIDR range
/// (`10.0.0.0/8`, `fd00::/8`). Written in the configuration as a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    /// The network, canonical (an IPv4-mapped range is the IPv4 range) with its host bits clear.
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// The range of one address.
    pub fn host(ip: IpAddr) -> Self {
        let ip = ip.to_canonical();
        let prefix = if ip.is_ipv4() { 32 } else { 128 };
        Self {
            network: ip,
            prefix,
        }
    }

    /// Whether `ip` (canonicalized first) is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask_v4(u32::from(ip), self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask_v6(u128::from(ip), self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask_v4(bits: u32, prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => bits & (u32::MAX << (32 - u32::from(p.min(32)))),
    }
}

fn mask_v6(bits: u128, prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p => bits & (u128::MAX << (128 - u32::from(p.min(128)))),
    }
}

impl FromStr for IpRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let bad = || format!("`{text}` is not an IP address or a CIDR range such as 10.0.0.0/8");
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| bad())?;
        let Some(prefix) = prefix else {
            return Ok(Self::host(ip));
        };
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(format!(
                "`{text}`: the prefix length must be at most {max} for this address"
            ));
        }
        Ok(match ip {
            IpAddr::V4(v4) => Self {
                network: IpAddr::V4(Ipv4Addr::from(mask_v4(u32::from(v4), prefix))),
                prefix,
            },
            // `::ffff:10.0.0.0/104` is the IPv4 range 10.0.0.0/8.
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if prefix >= 96 => Self {
                    network: IpAddr::V4(Ipv4Addr::from(mask_v4(u32::from(v4), prefix - 96))),
                    prefix: prefix - 96,
                },
                _ => Self {
                    network: IpAddr::V6(Ipv6Addr::from(mask_v6(u128::from(v6), prefix))),
                    prefix,
                },
            },
        })
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Self::host(self.network) {
            write!(f, "{}", self.network)
        } else {
            write!(f, "{}/{}", self.network, self.prefix)
        }
    }
}

impl Serialize for IpRange {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpRange {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How often at most the server says that `X-Forwarded-For` came from a peer it does not trust.
pub const FORWARDED_WARNING_INTERVAL_MS: i64 = 3600 * 1000;

/// `server.trusted_proxies`: the ranges whose `X-Forwarded-For` is believed, plus the memory of
/// when the "untrusted peer sent X-Forwarded-For" warning was last logged (so a misconfigured
/// proxy is reported once an hour, not once a request). Compares, clones and serializes as the
/// list alone.
pub struct TrustedProxies {
    ranges: Vec<IpRange>,
    last_warning_ms: AtomicI64,
}

impl TrustedProxies {
    /// The given ranges.
    pub fn new(ranges: Vec<IpRange>) -> Self {
        Self {
            ranges,
            last_warning_ms: AtomicI64::new(i64::MIN),
        }
    }

    /// The configured ranges.
    pub fn ranges(&self) -> &[IpRange] {
        &self.ranges
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(ip))
    }

    /// True at most once per [`FORWARDED_WARNING_INTERVAL_MS`]: whether the warning about an
    /// untrusted peer sending `X-Forwarded-For` is due at `now_ms`.
    pub fn forwarded_warning_due(&self, now_ms: i64) -> bool {
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        if last != i64::MIN && now_ms.saturating_sub(last) < FORWARDED_WARNING_INTERVAL_MS {
            return false;
        }
        // Of the requests that race here, one wins and warns.
        self.last_warning_ms
            .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Logs, at most once an hour, that `peer` sent `X-Forwarded-For` but is not trusted.
    pub fn warn_untrusted_forwarded(&self, peer: IpAddr) {
        if self.forwarded_warning_due(SystemClock.now_ms()) {
            tracing::warn!(
                peer = %peer,
                "a request from {peer} carries X-Forwarded-For, but {peer} is not in \
                 server.trusted_proxies, so the header is ignored and the proxy's address is \
                 the client for rate limits and sign-in lockouts; if MediaNest runs behind a \
                 reverse proxy, add its address or range to server.trusted_proxies \
                 (this warning repeats at most once an hour)"
            );
        }
    }
}

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.ranges).finish()
    }
}

impl Default for TrustedProxies {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl Clone for TrustedProxies {
    fn clone(&self) -> Self {
        Self::new(self.ranges.clone())
    }
}

impl PartialEq for TrustedProxies {
    fn eq(&self, other: &Self) -> bool {
        self.ranges == other.ranges
    }
}

impl From<Vec<IpRange>> for TrustedProxies {
    fn from(ranges: Vec<IpRange>) -> Self {
        Self::new(ranges)
    }
}

impl Serialize for TrustedProxies {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.ranges.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<IpRange>::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_mapped_addresses_are_the_ipv4_address() {
        assert_eq!(canonical(ip("::ffff:127.0.0.1")), ip("127.0.0.1"));
        assert_eq!(canonical(ip("::1")), ip("::1"));
        assert_eq!(client_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        assert_eq!(
            client_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            client_key(ip("2001:db8:1:2::1")),
            client_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(client_key(ip("192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(client_key_text(ip("2001:db8:1:2::77")), "2001:db8:1:2::/64");
        assert_eq!(client_key_text(ip("::ffff:192.0.2.1")), "192.0.2.1");
    }

    #[test]
    fn ranges_parse_match_and_print() {
        let r: IpRange = "10.0.0.0/8".parse().unwrap();
        assert!(r.contains(ip("10.200.3.4")));
        assert!(
            r.contains(ip("::ffff:10.1.1.1")),
            "mapped peers match IPv4 ranges"
        );
        assert!(!r.contains(ip("11.0.0.1")));
        assert_eq!(r.to_string(), "10.0.0.0/8");

        let r: IpRange = "fd00::/8".parse().unwrap();
        assert!(r.contains(ip("fd12:3456::1")));
        assert!(!r.contains(ip("fe80::1")));
        assert!(!r.contains(ip("10.0.0.1")));

        let host: IpRange = "127.0.0.1".parse().unwrap();
        assert!(host.contains(ip("::ffff:127.0.0.1")));
        assert!(!host.contains(ip("127.0.0.2")));
        assert_eq!(host.to_string(), "127.0.0.1");
        let mapped: IpRange = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(mapped, host);
        let mapped_range: IpRange = "::ffff:10.0.0.0/104".parse().unwrap();
        assert_eq!(mapped_range, "10.0.0.0/8".parse().unwrap());
        // Host bits are cleared; /0 is everything of that family.
        assert_eq!(
            "192.168.1.77/24".parse::<IpRange>().unwrap().to_string(),
            "192.168.1.0/24"
        );
        assert!(
            "0.0.0.0/0"
                .parse::<IpRange>()
                .unwrap()
                .contains(ip("8.8.8.8"))
        );

        for bad in [
            "",
            "nope",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/x",
            "10.0.0/8",
        ] {
            assert!(bad.parse::<IpRange>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_forwarded_warning_is_due_at_most_once_an_hour() {
        let t = TrustedProxies::default();
        let t0 = 1_800_000_000_000;
        assert!(t.forwarded_warning_due(t0));
        assert!(!t.forwarded_warning_due(t0 + 1));
        assert!(!t.forwarded_warning_due(t0 + FORWARDED_WARNING_INTERVAL_MS - 1));
        assert!(t.forwarded_warning_due(t0 + FORWARDED_WARNING_INTERVAL_MS));
        assert!(!t.forwarded_warning_due(t0 + FORWARDED_WARNING_INTERVAL_MS + 1000));
    }
}
