//! Attachments streamed in chunks (`dialtone incident attach`): they come back byte for byte,
//! a file over the limit stores nothing, and the audit row records the size and SHA-256.

use incidents::{ATTACHMENT_CHUNK, Error, NewIncident, Store};

use crate::support::on_both_backends;

on_both_backends!(streamed_attachments_round_trip_and_respect_the_limit);

/// A reader that hands out at most 1000 bytes per read, as a pipe might.
struct Trickle<'a>(&'a [u8]);

impl tokio::io::AsyncRead for Trickle<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = self.0.len().min(1000).min(buf.remaining());
        buf.put_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        std::task::Poll::Ready(Ok(()))
    }
}

async fn streamed_attachments_round_trip_and_respect_the_limit(store: &Store, _url: &str) {
    let inc = store
        .open_incident(
            NewIncident {
                account: "alice".into(),
                reporter: "r".into(),
                description: String::new(),
                runbook: "user-cant-call".into(),
                level: "L1".into(),
                current_step: None,
            },
            "agent-bob",
        )
        .await
        .expect("open");
    // Two and a half chunks of varied bytes, read in short pieces.
    let bytes: Vec<u8> = (0..ATTACHMENT_CHUNK * 5 / 2)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let att = store
        .add_attachment_streamed(
            inc.id,
            "client.pcap",
            "application/vnd.tcpdump.pcap",
            Trickle(&bytes),
            bytes.len() as u64,
            "agent-bob",
        )
        .await
        .expect("attach");
    assert_eq!(att.size, bytes.len() as i64);
    let (meta, back) = store.attachment(att.id).await.expect("fetch");
    assert_eq!(meta.name, "client.pcap");
    assert!(back == bytes, "the content comes back byte for byte");
    // An empty file is an empty attachment.
    let empty = store
        .add_attachment_streamed(inc.id, "empty.log", "text/plain", &b""[..], 10, "agent-bob")
        .await
        .expect("empty");
    assert_eq!(store.attachment(empty.id).await.expect("empty").1, b"");
    // One byte over the limit: refused, nothing kept.
    let before = store.attachments(inc.id).await.expect("list").len();
    match store
        .add_attachment_streamed(
            inc.id,
            "big.pcap",
            "application/octet-stream",
            &bytes[..],
            bytes.len() as u64 - 1,
            "agent-bob",
        )
        .await
    {
        Err(Error::Invalid(msg)) => assert!(msg.contains("limit"), "{msg}"),
        other => panic!("over the limit: {other:?}"),
    }
    assert_eq!(store.attachments(inc.id).await.expect("list").len(), before);
    let audit = store.audit(inc.id).await.expect("audit");
    let row = audit
        .iter()
        .find(|a| a.action == "attachment" && a.detail["name"] == "client.pcap")
        .expect("audited");
    assert_eq!(row.detail["size"], bytes.len() as i64);
    assert_eq!(row.detail["sha256"].as_str().map(str::len), Some(64));
    assert!(
        store
            .verify_audit()
            .await
            .expect("verify")
            .first_broken
            .is_none()
    );
}
