//! URI parsing and printing, table-driven.

use sip_message::{Scheme, Uri};

/// input, scheme, user, host, port
type Row = (
    &'static str,
    Scheme,
    Option<&'static str>,
    &'static str,
    Option<u16>,
);

#[test]
fn uri_table() {
    let ok: &[Row] = &[
        (
            "sip:alice@atlanta.com",
            Scheme::Sip,
            Some("alice"),
            "atlanta.com",
            None,
        ),
        (
            "sips:bob@biloxi.com:5061;transport=tls",
            Scheme::Sips,
            Some("bob"),
            "biloxi.com",
            Some(5061),
        ),
        (
            "sip:127.0.0.1:5060;lr",
            Scheme::Sip,
            None,
            "127.0.0.1",
            Some(5060),
        ),
        (
            "sip:[2001:db8::10]:5070",
            Scheme::Sip,
            None,
            "[2001:db8::10]",
            Some(5070),
        ),
        (
            "SIP:echo@127.0.0.1",
            Scheme::Sip,
            Some("echo"),
            "127.0.0.1",
            None,
        ),
        (
            "tel:+1-201-555-0123",
            Scheme::Tel,
            None,
            "+1-201-555-0123",
            None,
        ),
        (
            "sip:user;par=u%40example.net@example.com",
            Scheme::Sip,
            Some("user;par=u%40example.net"),
            "example.com",
            None,
        ),
    ];
    for (input, scheme, user, host, port) in ok {
        let u = Uri::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(&u.scheme, scheme, "{input}");
        assert_eq!(u.user.as_deref(), *user, "{input}");
        assert_eq!(u.host, *host, "{input}");
        assert_eq!(u.port, *port, "{input}");
        let again = Uri::parse(&u.to_string()).expect("reparse");
        assert_eq!(again, u, "{input}");
    }
    for bad in [
        "",
        "alice",
        "sip:",
        "sip:alice@",
        "sip:host:99999",
        "sip:a b@host",
        "sip:@host",
        "<sip:x@y>",
    ] {
        assert!(Uri::parse(bad).is_err(), "{bad:?} should be rejected");
    }
}

#[test]
fn password_is_parsed_but_never_debugged() {
    let u = Uri::parse("sip:alice:s3cret@example.com").expect("uri");
    assert_eq!(u.password.as_deref(), Some("s3cret"));
    assert!(!format!("{u:?}").contains("s3cret"));
    let err = Uri::parse("sip:alice:s3cret@exa mple.com").expect_err("space");
    assert!(!err.to_string().contains("s3cret"), "{err}");
}
