//! Address classification shared by every crate that judges where a SIP peer sits.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether an address is not reachable from the public Internet as written: IPv4 private
/// ranges (RFC 1918: 10/8, 172.16/12, 192.168/16), loopback (127/8), link-local (169.254/16,
/// RFC 3927), carrier-grade NAT (100.64/10, RFC 6598); IPv6 unique local (fc00::/7, RFC 4193),
/// link-local (fe80::/10), loopback (`::1`), and IPv4-mapped IPv6 (`::ffff:a.b.c.d`) of the
/// IPv4 ranges.
///
/// A contact, a Via `sent-by` or an SDP address in these ranges, while the packets came from
/// somewhere else, means the client is behind NAT.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => is_private_v6(v6),
    }
}

/// [`is_private`] of a host written as text (an IPv4 address, an IPv6 address with or without
/// brackets); `false` for a domain name or anything else that is not an address.
pub fn is_private_host(host: &str) -> bool {
    let host = host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.parse::<IpAddr>().is_ok_and(is_private)
}

fn is_private_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_private()
        || v4.is_loopback()
        || v4.is_link_local()
        || (a == 100 && (64..128).contains(&b))
}

fn is_private_v6(v6: Ipv6Addr) -> bool {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return is_private_v4(v4);
    }
    let first = v6.segments()[0];
    v6.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
}
