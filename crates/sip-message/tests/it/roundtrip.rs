//! Property: print -> parse -> print is stable, and folded headers parse to their unfolded value.

use proptest::prelude::*;
use sip_message::{Message, Method, Request, Response, Uri, parse};

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Invite),
        Just(Method::Register),
        Just(Method::Options),
        Just(Method::Bye),
        Just(Method::Cancel),
        Just(Method::Ack),
        "[A-Z]{3,9}".prop_map(|s| Method::from_token(&s)),
    ]
}

fn uri() -> impl Strategy<Value = Uri> {
    (
        proptest::option::of("[a-z0-9.+_-]{1,10}"),
        "[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,4})?",
        proptest::option::of(1u16..),
        proptest::collection::vec(("[a-z]{1,6}", proptest::option::of("[a-z0-9]{1,6}")), 0..3),
    )
        .prop_map(|(user, host, port, params)| {
            let mut u = Uri::sip(user.as_deref(), &host, port);
            for (n, v) in params {
                u = u.with_param(&n, v.as_deref());
            }
            u
        })
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        Just("Via".to_owned()),
        Just("v".to_owned()),
        Just("From".to_owned()),
        Just("i".to_owned()),
        Just("CSeq".to_owned()),
        Just("X-Custom".to_owned()),
        "[A-Za-z][A-Za-z0-9-]{0,12}".prop_filter("not content-length", |n| {
            let c = sip_message::canonical_name(n);
            c != "content-length"
        }),
    ];
    let value = "[!-~]([ -~]{0,40}[!-~])?";
    proptest::collection::vec((name, value), 0..8)
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..64)
}

fn message() -> impl Strategy<Value = Message> {
    let req = (method(), uri(), headers(), body()).prop_map(|(m, u, hs, b)| {
        let mut r = Request::new(m, u);
        for (n, v) in hs {
            r.headers.push(n, v);
        }
        r.set_body(
            if b.is_empty() {
                ""
            } else {
                "application/octet-stream"
            },
            b,
        );
        Message::Request(r)
    });
    let resp =
        (100u16..700, "[A-Za-z ]{0,20}", headers(), body()).prop_map(|(s, reason, hs, b)| {
            let mut r = Response::new(s);
            r.reason = reason;
            for (n, v) in hs {
                r.headers.push(n, v);
            }
            r.set_body("", b);
            Message::Response(r)
        });
    prop_oneof![req, resp]
}

proptest! {
    #[test]
    fn print_parse_print(m in message()) {
        let bytes = m.to_bytes();
        let parsed = parse(&bytes);
        let back = parsed.message.clone();
        prop_assert!(back.is_some(), "{:?}", parsed.diagnostics);
        let back = back.unwrap_or_else(|| m.clone());
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.to_bytes(), bytes);
    }

    #[test]
    fn folding_joins_with_one_space(words in proptest::collection::vec("[a-z0-9;=]{1,8}", 2..6), indent in "[ \t]{1,3}") {
        let folded = words.join(&format!("\r\n{indent}"));
        let text = format!("OPTIONS sip:a@b SIP/2.0\r\nX-Folded: {folded}\r\nContent-Length: 0\r\n\r\n");
        let parsed = parse(text.as_bytes());
        let m = parsed.message.expect("message");
        let want = words.join(" ");
        prop_assert_eq!(m.headers().get("x-folded"), Some(want.as_str()));
    }

    #[test]
    fn never_panics_on_bytes(input in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&input);
        let _ = sip_message::frame(&input);
        let _ = sip_message::sdp::SessionDescription::parse(&input);
    }
}
