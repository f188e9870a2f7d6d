//! The client's address: the TCP peer, or, when the peer is a trusted proxy
//! (`SCIMD_TRUSTED_PROXIES`), the address that proxy reports in `X-Forwarded-For`.
//! The same setting decides whether `X-Forwarded-Proto` and `X-Forwarded-Host` are believed.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::http::HeaderMap;

/// Headers only a trusted proxy may set; removed from every other peer's requests.
pub const FORWARDED_HEADERS: [&str; 4] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
];

/// Most `X-Forwarded-For` entries looked at (from the right): a chain of proxies is short.
const MAX_FORWARDED_HOPS: usize = 16;

/// The client's address: the TCP `peer`, unless the peer is a trusted proxy; then the
/// right-most address of `X-Forwarded-For` that is not itself a trusted proxy. Entries left
/// of it were written by the client and prove nothing; every proxy appends the address it
/// saw, so the right-most untrusted entry is the one our own proxies vouch for.
pub fn client_addr(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(peer) {
        return Some(peer);
    }
    let mut nearest = peer;
    let entries = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect::<Vec<_>>();
    for entry in entries.iter().rev().take(MAX_FORWARDED_HOPS) {
        let Some(addr) = parse_entry(entry) else {
            // Garbage our proxy passed on: the last address we can vouch for.
            return Some(nearest);
        };
        if !trusted.contains(addr) {
            return Some(canonical(addr));
        }
        nearest = addr;
    }
    Some(canonical(nearest))
}

/// `1.2.3.4`, `2001:db8::1`, `1.2.3.4:5678` or `[2001:db8::1]:5678`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    IpAddr::from_str(entry)
        .ok()
        .or_else(|| SocketAddr::from_str(entry).ok().map(|s| s.ip()))
}

/// A list of networks (`10.0.0.0/8`, `127.0.0.1`, `::1/128`) whose connections are proxies
/// we operate. Empty (the default): no forwarded header is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Whether `addr` lies in one of the trusted networks.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = canonical(addr);
        self.0
            .iter()
            .any(|&(net, bits)| in_network(addr, net, bits))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// A comma-separated list of addresses or CIDR networks.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut networks = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, bits) = match item.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (item, None),
            };
            let addr = canonical(
                IpAddr::from_str(addr).map_err(|_| format!("{item:?} is not an IP address"))?,
            );
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(b) => b
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("{item:?} has an invalid prefix length"))?,
                None => max,
            };
            networks.push((addr, bits));
        }
        Ok(TrustedProxies(networks))
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) compare as the IPv4 address they carry.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn in_network(addr: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_contain_their_addresses_and_nothing_else() {
        let trusted: TrustedProxies = "10.0.0.0/8, 127.0.0.1, ::1/128, 192.168.1.0/24"
            .parse()
            .unwrap();
        let cases = [
            ("10.1.2.3", true),
            ("11.0.0.1", false),
            ("127.0.0.1", true),
            ("127.0.0.2", false),
            ("::1", true),
            ("::ffff:10.9.9.9", true),
            ("192.168.1.200", true),
            ("192.168.2.1", false),
        ];
        for (addr, want) in cases {
            assert_eq!(trusted.contains(addr.parse().unwrap()), want, "{addr}");
        }
        assert!(!TrustedProxies::default().contains("127.0.0.1".parse().unwrap()));
        let everything: TrustedProxies = "0.0.0.0/0".parse().unwrap();
        assert!(everything.contains("8.8.8.8".parse().unwrap()));
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        headers
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies_and_from_the_right() {
        let trusted: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let cases: [(&str, &[&str], &TrustedProxies, &str); 8] = [
            // An untrusted peer's header is ignored.
            ("203.0.113.9", &["198.51.100.1"], &trusted, "203.0.113.9"),
            // No proxies configured: ignored even from 10/8.
            (
                "10.0.0.2",
                &["198.51.100.1"],
                &TrustedProxies::default(),
                "10.0.0.2",
            ),
            ("10.0.0.2", &["198.51.100.1"], &trusted, "198.51.100.1"),
            // The client's own prefix is skipped: right-most untrusted wins.
            (
                "10.0.0.2",
                &["1.1.1.1, 198.51.100.1"],
                &trusted,
                "198.51.100.1",
            ),
            (
                "10.0.0.2",
                &["1.1.1.1", "198.51.100.1, 10.0.0.7"],
                &trusted,
                "198.51.100.1",
            ),
            // Only proxies: the farthest one.
            ("10.0.0.2", &["10.0.0.5, 10.0.0.7"], &trusted, "10.0.0.5"),
            ("10.0.0.2", &[], &trusted, "10.0.0.2"),
            (
                "10.0.0.2",
                &["[2001:db8::1]:443, garbage, 10.0.0.7"],
                &trusted,
                "10.0.0.7",
            ),
        ];
        for (peer, header, trusted, want) in cases {
            assert_eq!(
                client_addr(Some(ip(peer)), &forwarded(header), trusted),
                Some(ip(want)),
                "{peer} {header:?}"
            );
        }
        assert_eq!(client_addr(None, &forwarded(&["1.1.1.1"]), &trusted), None);
    }

    #[test]
    fn malformed_lists_are_refused() {
        for bad in ["nonsense", "10.0.0.0/33", "::1/129", "10.0.0.0/x"] {
            assert!(bad.parse::<TrustedProxies>().is_err(), "{bad}");
        }
    }
}
