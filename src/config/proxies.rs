//! `SCIMD_TRUSTED_PROXIES`: the networks whose connections are proxies we operate, parsed from
//! the configuration. The HTTP layer asks it whether a peer's forwarded headers are believed.

use std::net::IpAddr;
use std::str::FromStr;

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
pub(crate) fn canonical(addr: IpAddr) -> IpAddr {
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

    #[test]
    fn malformed_lists_are_refused() {
        for bad in ["nonsense", "10.0.0.0/33", "::1/129", "10.0.0.0/x"] {
            assert!(bad.parse::<TrustedProxies>().is_err(), "{bad}");
        }
    }
}
