//! Event extraction and pairing, data-driven: each scenario's messages go through the store in
//! one batch, one message per batch, and (for order-independence) responses first; all three
//! must give the expected events.

use chrono::{DateTime, Utc};
use sip_events::events::{Skip, record_from_hep};
use sip_events::synth::{self, RegOutcome};
use sip_events::{EventStore, EventWindow, SipRecord, StoreConfig, hep};
use sip_message::Message;
use std::net::SocketAddr;

fn client() -> SocketAddr {
    "127.0.0.1:5098".parse().unwrap()
}
fn server() -> SocketAddr {
    "127.0.0.1:5060".parse().unwrap()
}

fn now() -> i64 {
    Utc::now().timestamp_micros() - 60_000_000
}

fn records(msgs: Vec<(Vec<u8>, SocketAddr, SocketAddr, i64)>) -> Vec<SipRecord> {
    synth::wrap(msgs)
        .iter()
        .filter_map(|p| record_from_hep(&hep::decode(p).unwrap(), 0).ok())
        .collect()
}

async fn window(batches: Vec<Vec<SipRecord>>) -> (tempfile::TempDir, EventWindow) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite");
    let store = EventStore::open(StoreConfig::new(&path)).await.unwrap();
    for b in batches {
        store.write_batch(&b).await.unwrap();
    }
    store.close().await;
    let w = EventWindow::open(&path).await.unwrap();
    (dir, w)
}

/// The three ways of feeding the same messages.
fn feeds(recs: &[SipRecord]) -> Vec<(&'static str, Vec<Vec<SipRecord>>)> {
    let (resp, req): (Vec<_>, Vec<_>) = recs.iter().cloned().partition(|r| r.status.is_some());
    vec![
        ("one batch", vec![recs.to_vec()]),
        (
            "one per batch",
            recs.iter().map(|r| vec![r.clone()]).collect(),
        ),
        ("responses first", vec![resp, req]),
    ]
}

fn long_ago() -> DateTime<Utc> {
    Utc::now() - chrono::Duration::days(1)
}

/// (outcome, expected (status, challenge, auth user) per attempt, oldest first)
type RegCase = (RegOutcome, &'static [(u16, bool, Option<&'static str>)]);

#[tokio::test]
async fn registration_attempts_pair_request_and_response() {
    let cases: &[RegCase] = &[
        (
            RegOutcome::Registered,
            &[(401, true, None), (200, false, Some("alice"))],
        ),
        (
            RegOutcome::Refused,
            &[(401, true, None), (403, false, Some("alice"))],
        ),
        (RegOutcome::ChallengeOnly, &[(401, true, None)]),
    ];
    for (outcome, expected) in cases {
        let recs = records(synth::registration(
            "alice",
            "example.test",
            client(),
            server(),
            "reg-1",
            now(),
            *outcome,
        ));
        for (how, batches) in feeds(&recs) {
            let (_dir, w) = window(batches).await;
            let mut got = w.registration_attempts("alice", long_ago()).await.unwrap();
            got.reverse();
            let summary: Vec<_> = got
                .iter()
                .map(|r| (r.status, r.challenge, r.auth_user.as_deref()))
                .collect();
            assert_eq!(summary, expected.to_vec(), "{outcome:?}, {how}");
            for r in &got {
                // The client's address and its user agent, from the request, whatever came first.
                assert_eq!(r.source, "127.0.0.1:5098", "{outcome:?}, {how}");
                assert_eq!(r.transport, "udp");
                assert_eq!(r.user_agent, "baresip 1.0", "{outcome:?}, {how}");
                assert_eq!(r.user, "alice");
            }
            assert!(
                w.registration_attempts("bob", long_ago())
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
    }
}

#[tokio::test]
async fn call_outcomes_pair_invite_responses_and_bye() {
    // (final status, reason, answered)
    let cases: &[(u16, &str, bool)] = &[
        (200, "OK", true),
        (503, "Service Unavailable", false),
        (486, "Busy Here", false),
        (404, "Not Found", false),
    ];
    for (status, reason, answered) in cases {
        let recs = records(synth::call(
            "alice",
            "95551234",
            "example.test",
            client(),
            server(),
            "call-1",
            now(),
            *status,
        ));
        for (how, batches) in feeds(&recs) {
            let (_dir, w) = window(batches).await;
            let calls = w.calls("alice", long_ago(), 10).await.unwrap();
            assert_eq!(calls.len(), 1, "{status} {how}");
            let c = &calls[0];
            assert_eq!((c.status, c.reason.as_str()), (*status, *reason), "{how}");
            assert_eq!(c.caller, "alice");
            assert_eq!(c.callee, "95551234");
            assert_eq!(c.dialled, "95551234");
            assert_eq!(c.source, "127.0.0.1:5098", "{how}");
            assert_eq!(c.answered_at.is_some(), *answered, "{status} {how}");
            assert_eq!(c.ended_at.is_some(), *answered, "{status} {how}");
            if let (Some(a), Some(e)) = (c.answered_at, c.ended_at) {
                assert_eq!((e - a).num_seconds(), 30);
            }
            // The dialled number finds the call too, and the parties join by Call-ID.
            assert_eq!(w.calls("95551234", long_ago(), 10).await.unwrap().len(), 1);
            let parties = w
                .call_parties(&["call-1".to_string(), "unknown".to_string()])
                .await
                .unwrap();
            assert_eq!(parties.len(), 1);
            assert_eq!(parties["call-1"].dialled, "95551234");
        }
    }
}

#[tokio::test]
async fn the_first_invite_names_the_dialled_number_and_a_2xx_decides() {
    let t = now();
    let mut msgs = synth::call(
        "alice",
        "95551234",
        "example.test",
        client(),
        server(),
        "fwd-1",
        t,
        200,
    );
    // Kamailio's copy of the INVITE it forwards: same Call-ID and CSeq, a new Request-URI,
    // sent by the server; then a late failed re-INVITE (CSeq 3) that must not undo the answer.
    let fwd = String::from_utf8(msgs[0].0.clone()).unwrap().replace(
        "INVITE sip:95551234@example.test",
        "INVITE sip:+3195551234@gw.example.test",
    );
    msgs.insert(
        1,
        (
            fwd.into_bytes(),
            server(),
            "127.0.0.1:7092".parse().unwrap(),
            t + 500,
        ),
    );
    let reinvite_fail = "SIP/2.0 491 Request Pending\r\nVia: SIP/2.0/UDP 127.0.0.1:5098;branch=z9hG4bKx\r\nFrom: <sip:alice@example.test>;tag=a\r\nTo: <sip:95551234@example.test>;tag=s1\r\nCall-ID: fwd-1\r\nCSeq: 3 INVITE\r\nContent-Length: 0\r\n\r\n";
    msgs.push((
        reinvite_fail.as_bytes().to_vec(),
        server(),
        client(),
        t + 5_000_000,
    ));
    let recs = records(msgs);
    for (how, batches) in feeds(&recs) {
        let (_dir, w) = window(batches).await;
        let c = &w.calls("alice", long_ago(), 10).await.unwrap()[0];
        assert_eq!(c.dialled, "95551234", "{how}");
        assert_eq!(c.source, "127.0.0.1:5098", "{how}");
        assert_eq!(c.status, 200, "{how}");
        assert!(c.answered_at.is_some());
    }
}

#[test]
fn only_what_the_diagnosis_needs_is_kept() {
    let t = now();
    let pk = |m: &str| synth::hep_sip(m.as_bytes(), client(), server(), t);
    let skip = |m: &str| record_from_hep(&hep::decode(&pk(m)).unwrap(), 0).err();
    let options = "OPTIONS sip:x@y SIP/2.0\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\nFrom: <sip:a@y>\r\nTo: <sip:x@y>\r\n\r\n";
    assert_eq!(skip(options), Some(Skip::Uninteresting));
    let ack = "ACK sip:x@y SIP/2.0\r\nCall-ID: o1\r\nCSeq: 1 ACK\r\nFrom: <sip:a@y>\r\nTo: <sip:x@y>\r\n\r\n";
    assert_eq!(skip(ack), Some(Skip::Uninteresting));
    let no_cseq =
        "INVITE sip:x@y SIP/2.0\r\nCall-ID: o1\r\nFrom: <sip:a@y>\r\nTo: <sip:x@y>\r\n\r\n";
    assert_eq!(skip(no_cseq), Some(Skip::Unpairable));
    let no_callid =
        "INVITE sip:x@y SIP/2.0\r\nCSeq: 1 INVITE\r\nFrom: <sip:a@y>\r\nTo: <sip:x@y>\r\n\r\n";
    assert_eq!(skip(no_callid), Some(Skip::Unpairable));
    assert_eq!(skip("\x00\x01 binary"), Some(Skip::NotSip));

    // A REGISTER keeps the credentials' username, never the digest response, and no body.
    let recs = records(synth::registration(
        "bob",
        "example.test",
        client(),
        server(),
        "r9",
        t,
        RegOutcome::Registered,
    ));
    assert_eq!(recs.len(), 4);
    let with_auth = &recs[2];
    assert_eq!(with_auth.auth_user, "bob");
    assert!(!format!("{with_auth:?}").contains("0123456789abcdef"));
    assert_eq!(
        with_auth.at,
        t + 10_000,
        "the agent's timestamp is the event's time"
    );
    // Long header values are cut.
    let long_ua = format!(
        "REGISTER sip:y SIP/2.0\r\nCall-ID: l1\r\nCSeq: 1 REGISTER\r\nFrom: <sip:a@y>\r\nTo: <sip:a@y>\r\nUser-Agent: {}\r\n\r\n",
        "x".repeat(5000)
    );
    let r = record_from_hep(&hep::decode(&pk(&long_ua)).unwrap(), 0).unwrap();
    assert_eq!(r.user_agent.len(), sip_events::events::MAX_FIELD);
}

#[tokio::test]
async fn the_timeline_reads_in_plain_words() {
    let t = now();
    let mut recs = records(synth::registration(
        "alice",
        "example.test",
        client(),
        server(),
        "r1",
        t,
        RegOutcome::Registered,
    ));
    recs.extend(records(synth::call(
        "alice",
        "95551234",
        "example.test",
        client(),
        server(),
        "c1",
        t + 1_000_000,
        503,
    )));
    recs.extend(records(synth::call(
        "bob",
        "alice",
        "example.test",
        "127.0.0.1:5200".parse().unwrap(),
        server(),
        "c2",
        t + 2_000_000,
        486,
    )));
    let (_dir, w) = window(vec![recs]).await;
    let lines: Vec<String> = w
        .timeline("alice", long_ago(), 50)
        .await
        .unwrap()
        .iter()
        .map(|e| e.describe("alice"))
        .collect();
    assert_eq!(
        lines,
        vec![
            "call from bob → 486 Busy Here",
            "call to 95551234 → 503 Service Unavailable",
            "REGISTER from 127.0.0.1:5098 udp (baresip 1.0) → 200 OK registered",
            "REGISTER from 127.0.0.1:5098 udp (baresip 1.0) → 401 challenge",
        ]
    );
    assert_eq!(w.timeline("alice", long_ago(), 2).await.unwrap().len(), 2);
    // `since` bounds the window read.
    let later = sip_events::events::time_of(t + 1_500_000);
    assert_eq!(w.timeline("alice", later, 50).await.unwrap().len(), 1);
}

/// The lean path (scanner) and the full parser give the same record for every message of the
/// synthetic mix, the sip-message corpus and a few awkward forms (compact names, folding, case).
#[test]
fn lean_extraction_agrees_with_the_full_parser() {
    use sip_events::events::record_from_head;
    let t = now();
    let mut payloads: Vec<Vec<u8>> = Vec::new();
    for (i, outcome) in [
        RegOutcome::Registered,
        RegOutcome::Refused,
        RegOutcome::ChallengeOnly,
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("eq-r{i}");
        let msgs = synth::registration("alice", "x.test", client(), server(), &id, t, outcome);
        payloads.extend(msgs.into_iter().map(|m| m.0));
    }
    for status in [200, 486, 503] {
        let id = format!("eq-c{status}");
        let msgs = synth::call(
            "alice",
            "95551234",
            "x.test",
            client(),
            server(),
            &id,
            t,
            status,
        );
        payloads.extend(msgs.into_iter().map(|m| m.0));
    }
    for odd in [
        "INVITE sip:+4930@x.test;user=phone SIP/2.0\r\nv: SIP/2.0/tls h;branch=z9hG4bK1\r\ni: compact-1\r\nf: \"A, B\" <sips:alice@x.test>;tag=1\r\nt: sip:bob@x.test\r\ncseq: 3 INVITE\r\nuser-agent: folded\r\n  agent 2.0\r\nproxy-authorization: Digest username=\"alice\", response=\"00\"\r\n\r\n",
        "SIP/2.0 407 Proxy Authentication Required\r\nVia: SIP/2.0/UDP h\r\nCall-ID:   spaced  \r\nCSeq: 3 INVITE\r\nFrom: <sip:alice@x>\r\nTo: <tel:+4930>\r\nProxy-Authenticate: Digest realm=\"x\"\r\nServer: k\r\n\r\n",
        "SIP/2.0 180 Ringing\nCall-ID: lf-only\nCSeq: 1 INVITE\nFrom: <sip:a@x>\nTo: <sip:b@x>\n\n",
        "BYE sip:b@x SIP/2.0\r\nCall-ID: bye-1\r\nCSeq: 4 BYE\r\nFrom: <sip:a@x>\r\nTo: <sip:b@x>\r\n\r\n",
        "CANCEL sip:b@x SIP/2.0\r\nCall-ID: c-1\r\nCSeq: 1 CANCEL\r\nFrom: <sip:a@x>\r\nTo: <sip:b@x>\r\n\r\n",
        "ACK sip:b@x SIP/2.0\r\nCall-ID: a-1\r\nCSeq: 1 INVITE\r\n\r\n",
        "REGISTER sip:x SIP/2.0\r\nCall-ID: r-1\r\nCSeq: one REGISTER\r\n\r\n",
        "OPTIONS sip:x SIP/2.0\r\nCall-ID: o-1\r\n\r\n",
        "SIP/2.0 200 OK\r\nCall-ID: \r\nCSeq: 1 REGISTER\r\n\r\n",
    ] {
        payloads.push(odd.as_bytes().to_vec());
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/sip-message/corpus/parse");
    for entry in std::fs::read_dir(&dir).unwrap() {
        payloads.push(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let mut kept = 0;
    for p in &payloads {
        let full = sip_message::parse(p);
        if full.diagnostics.iter().any(|d| d.message.contains("UTF-8")) {
            continue;
        }
        let (Some(m), Ok(head)) = (full.message, sip_message::scan(p)) else {
            continue;
        };
        let src = "192.0.2.1:5060".to_owned();
        let dst = "192.0.2.2:5060".to_owned();
        let lean = record_from_head(&head, 7, src.clone(), dst.clone(), Some("udp"));
        let reference = record_from_message(&m, 7, src, dst, Some("udp"));
        assert_eq!(lean, reference, "{}", String::from_utf8_lossy(p));
        kept += usize::from(lean.is_ok());
    }
    assert!(kept >= 25, "only {kept} records compared");
}

fn cut(s: &str) -> String {
    let mut end = s.len().min(sip_events::events::MAX_FIELD);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

fn wanted(m: &sip_message::Method) -> bool {
    use sip_message::Method;
    matches!(
        m,
        Method::Register | Method::Invite | Method::Bye | Method::Cancel
    )
}

/// The reference the lean path is held to: a record read from the fully parsed message.
fn record_from_message(
    msg: &Message,
    at: i64,
    src: String,
    dst: String,
    ip_transport: Option<&str>,
) -> Result<SipRecord, Skip> {
    let h = msg.headers();
    let cseq = match h.cseq() {
        Ok(Some(c)) => c,
        _ => {
            return Err(match msg {
                Message::Request(r) if !wanted(&r.method) => Skip::Uninteresting,
                _ => Skip::Unpairable,
            });
        }
    };
    if !wanted(&cseq.method) {
        return Err(Skip::Uninteresting);
    }
    let call_id = match h.call_id() {
        Some(c) if !c.trim().is_empty() => cut(c.trim()),
        _ => return Err(Skip::Unpairable),
    };
    let user_of = |na: Option<sip_message::NameAddr>| {
        na.and_then(|n| n.uri.user)
            .map(|u| cut(&u))
            .unwrap_or_default()
    };
    let from_user = user_of(h.from().ok().flatten());
    let to_user = user_of(h.to().ok().flatten());
    // Only the top Via matters: its transport is the one the message came over.
    let via_transport = h
        .get("Via")
        .and_then(|v| sip_message::split_list(v).into_iter().next())
        .and_then(|v| sip_message::Via::parse(v).ok())
        .map(|v| v.transport.to_ascii_lowercase());
    let transport = via_transport
        .filter(|t| !t.is_empty())
        .or_else(|| ip_transport.map(str::to_owned))
        .unwrap_or_default();
    let (status, reason, ruri_user, user_agent, auth_user, challenge) = match msg {
        Message::Request(r) => {
            if r.method != cseq.method {
                // An ACK or other request inside an INVITE transaction's CSeq: not kept.
                return Err(Skip::Uninteresting);
            }
            let auth = h
                .authorization()
                .ok()
                .flatten()
                .or_else(|| h.proxy_authorization().ok().flatten())
                .and_then(|c| c.param("username"))
                .map(|u| cut(&u))
                .unwrap_or_default();
            (
                None,
                String::new(),
                r.uri.user.as_deref().map(cut).unwrap_or_default(),
                h.user_agent().map(cut).unwrap_or_default(),
                auth,
                false,
            )
        }
        Message::Response(r) => {
            let challenge = matches!(r.status, 401 | 407)
                && (h.get("WWW-Authenticate").is_some() || h.get("Proxy-Authenticate").is_some());
            (
                Some(r.status),
                cut(&r.reason),
                String::new(),
                h.server().map(cut).unwrap_or_default(),
                String::new(),
                challenge,
            )
        }
    };
    Ok(SipRecord {
        at,
        call_id,
        cseq: cseq.seq,
        method: cseq.method.as_str().to_owned(),
        status,
        reason,
        from_user,
        to_user,
        ruri_user,
        src: cut(&src),
        dst: cut(&dst),
        transport: cut(&transport),
        user_agent,
        auth_user,
        challenge,
    })
}
