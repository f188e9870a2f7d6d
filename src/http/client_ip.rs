//! The client's address: the TCP peer, or, when the peer is a trusted proxy
//! (`SCIMD_TRUSTED_PROXIES`), the address that proxy reports in `X-Forwarded-For`.
//! The same setting decides whether `X-Forwarded-Proto` and `X-Forwarded-Host` are believed.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::http::{HeaderMap, HeaderName, header};

use crate::config::TrustedProxies;
use crate::config::proxies::canonical;

/// Headers only a trusted proxy may set; removed from every other peer's requests.
pub const FORWARDED_HEADERS: [HeaderName; 4] = [
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    header::FORWARDED,
];

/// The de-facto forwarding headers, named once: a name given as text is parsed at each use.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The first value of a forwarding header (`X-Forwarded-Proto`, `X-Forwarded-Host`): the
/// client-facing hop's. Only a trusted proxy's reach the handlers
/// (`http/envelope.rs`).
pub fn first_forwarded(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    headers
        .get(name)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split(',').next())
        .map(str::trim)
}

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
        .get_all(X_FORWARDED_FOR)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
