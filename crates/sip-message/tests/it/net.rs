//! Private-address classification and the lenient URI text helpers, table-driven.

use sip_message::{host_of, is_private, is_private_host, uri_hostport, uri_param};
use std::net::IpAddr;

/// address, private?
const PRIVATE: &[(&str, bool)] = &[
    // RFC 1918
    ("10.0.0.1", true),
    ("10.255.255.255", true),
    ("172.16.0.1", true),
    ("172.31.255.254", true),
    ("172.15.255.255", false),
    ("172.32.0.1", false),
    ("192.168.1.20", true),
    ("192.169.0.1", false),
    // loopback, link-local (RFC 3927)
    ("127.0.0.1", true),
    ("127.255.0.9", true),
    ("169.254.10.1", true),
    ("169.253.0.1", false),
    // carrier-grade NAT (RFC 6598)
    ("100.64.0.1", true),
    ("100.127.255.255", true),
    ("100.63.255.255", false),
    ("100.128.0.1", false),
    // public
    ("8.8.8.8", false),
    ("192.0.2.10", false),
    ("203.0.113.5", false),
    // IPv6: unique local (RFC 4193), link-local, loopback
    ("fc00::1", true),
    ("fd12:3456:789a::1", true),
    ("fe80::1", true),
    ("febf::1", true),
    ("fec0::1", false),
    ("::1", true),
    ("2001:db8::1", false),
    ("2606:4700::1111", false),
    ("::", false),
    // IPv4-mapped IPv6 follows the IPv4 address
    ("::ffff:10.1.2.3", true),
    ("::ffff:127.0.0.1", true),
    ("::ffff:100.64.1.1", true),
    ("::ffff:8.8.8.8", false),
];

#[test]
fn private_address_table() {
    for (addr, want) in PRIVATE {
        let ip: IpAddr = addr.parse().unwrap();
        assert_eq!(is_private(ip), *want, "{addr}");
        assert_eq!(is_private_host(addr), *want, "{addr} as text");
    }
}

#[test]
fn private_host_text() {
    for (host, want) in [
        ("[fd00::5]", true),
        ("[2001:db8::1]", false),
        (" 192.168.0.1 ", true),
        ("pbx.example.test", false),
        ("10.0.0.1:5060", false),
        ("", false),
    ] {
        assert_eq!(is_private_host(host), want, "{host:?}");
    }
}

#[test]
fn host_of_table() {
    for (uri, want) in [
        ("sip:alice@10.0.0.1:5060;transport=tcp", Some("10.0.0.1")),
        ("sip:10.0.0.1", Some("10.0.0.1")),
        (
            "<sip:bob@pbx.example.test>;expires=60",
            Some("pbx.example.test"),
        ),
        ("sips:bob:secret@host.test:5061", Some("host.test")),
        ("sip:alice@[2001:db8::1]:5060", Some("2001:db8::1")),
        ("sip:[fd00::1];lr", Some("fd00::1")),
        ("sip:alice@host?subject=x", Some("host")),
        ("tel:+15551234", Some("+15551234")),
        ("alice@host", None),
        ("", None),
    ] {
        assert_eq!(host_of(uri), want, "{uri:?}");
    }
}

#[test]
fn uri_param_table() {
    let contact = "<sip:alice@192.0.2.1:5060;transport=TCP;ob;rinstance= x1 >;expires=60";
    for (name, want) in [
        ("transport", Some("TCP")),
        ("Transport", Some("TCP")),
        ("rinstance", Some("x1")),
        // a flag has no value
        ("ob", None),
        // header parameters after '>' are not URI parameters
        ("expires", None),
        ("maddr", None),
    ] {
        assert_eq!(uri_param(contact, name), want, "{name}");
    }
    assert_eq!(
        uri_param("sip:a@h;lr;transport=udp", "transport"),
        Some("udp")
    );
    assert_eq!(uri_param("sip:a@h", "transport"), None);
}

#[test]
fn uri_hostport_table() {
    for (uri, want) in [
        (
            "sip:alice@192.0.2.1:5060;transport=tcp",
            Some("192.0.2.1:5060"),
        ),
        ("<sips:bob@pbx.test:5061>;expires=60", Some("pbx.test:5061")),
        ("sip:198.51.100.7:5070", Some("198.51.100.7:5070")),
        ("sip:alice@host?subject=x", Some("host")),
        ("sip:alice@[2001:db8::1]:5060", Some("[2001:db8::1]:5060")),
        ("10.0.0.1:5060", Some("10.0.0.1:5060")),
        ("sip:alice@", None),
        ("", None),
    ] {
        assert_eq!(uri_hostport(uri).as_deref(), want, "{uri:?}");
    }
}
