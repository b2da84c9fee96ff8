//! Secrets (digest responses, URI passwords) never survive redaction, Debug or Serialize.

use sip_message::{REDACTED, parse, redact, redact_text};

#[test]
fn redact_text_table() {
    let cases = [
        (
            r#"Digest username="bob", response="dfe56131d1958046689d83306477ecc", uri="sip:a""#,
            r#"Digest username="bob", response="<redacted>", uri="sip:a""#,
        ),
        (
            "Digest response=abc123,nonce=x",
            "Digest response=<redacted>,nonce=x",
        ),
        (
            "<sip:alice:pw@host>;tag=1",
            "<sip:alice:<redacted>@host>;tag=1",
        ),
        ("sip:host:5060;lr", "sip:host:5060;lr"),
        ("sips:u:p@h sip:x@y", "sips:u:<redacted>@h sip:x@y"),
        ("cresponse=1", "cresponse=1"),
        ("response=\"abc\nnext", "response=\"<redacted>\"\nnext"),
    ];
    for (input, want) in cases {
        assert_eq!(redact_text(input), want, "{input}");
    }
}

#[test]
fn redacted_message_has_no_secret() {
    let input = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/test_data/messages/rfc3665-2.1-f3-register-auth.sip"
    ))
    .expect("file");
    let m = parse(&input).message.expect("message");
    let secret = "dfe56131d1958046689d83306477ecc";
    assert!(String::from_utf8_lossy(&m.to_bytes()).contains(secret));
    let r = redact(&m);
    let text = String::from_utf8_lossy(&r.to_bytes()).into_owned();
    assert!(!text.contains(secret));
    assert!(text.contains(REDACTED));
    assert!(!format!("{m:?}").contains(secret), "Debug leaks");
    assert!(
        !serde_json::to_string(&m).expect("json").contains(secret),
        "Serialize leaks"
    );
    let creds = m.headers().authorization().expect("auth").expect("present");
    assert_eq!(creds.param("username").as_deref(), Some("bob"));
    assert!(!format!("{creds:?}").contains(secret));
}

proptest::proptest! {
    /// Whatever the secret and however the header is spaced or cased, it does not survive.
    #[test]
    fn secrets_never_survive(secret in "[A-Za-z0-9+/]{8,40}", sp in "[ ]{0,2}", quoted in proptest::bool::ANY, upper in proptest::bool::ANY) {
        let key = if upper { "RESPONSE" } else { "response" };
        let val = if quoted { format!("\"{secret}\"") } else { secret.clone() };
        let header = format!("Digest username=\"u\", {key}{sp}={sp}{val}, nonce=\"n\"");
        let out = redact_text(&header);
        proptest::prop_assert!(!out.contains(&secret), "{}", out);
        let uri = format!("<sip:alice:{secret}@example.com>;tag=1");
        let out = redact_text(&uri);
        proptest::prop_assert!(!out.contains(&secret), "{}", out);
        proptest::prop_assert!(out.contains("@example.com"));
    }
}
