//! A call between two probe accounts: one calls, the other answers as a UAS.

use super::call::{CallKind, do_call};
use super::register::{do_register, register_request};
use super::{Ctx, open, verdict};
use crate::media::{self};
use crate::report::{Category, ProbeReport};
use crate::uac::{Session, category_for_status, random_token};
use crate::{Credentials, ProbeOptions, ProbeTarget};
use sip_message::sdp::SessionDescription;
use sip_message::{Method, Request, Response};
use std::net::SocketAddr;
use std::time::Instant;
use tokio::net::UdpSocket;

/// The answering side of [`call_between`]: waits for an INVITE, answers with SDP, reflects
/// RTP until the BYE. Returns (packets reflected, answered).
async fn uas_answer(s: &mut Session, creds: &Credentials, until_at: Instant) -> (u32, bool) {
    let local_ip = s.local.ip();
    let Ok(media) = UdpSocket::bind(SocketAddr::new(local_ip, 0)).await else {
        return (0, false);
    };
    let media_port = media.local_addr().map(|a| a.port()).unwrap_or(0);
    let Some(invite) = next_request(s, Method::Invite, until_at).await else {
        // Nothing to answer: the caller's side of the report says why (404, 480, ...).
        s.note("callee: no INVITE arrived");
        return (0, false);
    };
    let to_tag = random_token(10);
    let ringing = response_to(&invite, 180, &to_tag, None);
    let _ = s.send_raw(&ringing.to_bytes(), "callee rings").await;
    let answer = SessionDescription::audio_offer(
        &local_ip.to_string(),
        media_port,
        rand::random::<u32>().into(),
        &[(0, "PCMU/8000"), (8, "PCMA/8000")],
    );
    let mut ok = response_to(
        &invite,
        200,
        &to_tag,
        Some(format!("<{}>", s.contact_uri(&creds.user))),
    );
    ok.set_body("application/sdp", answer.to_string().into_bytes());
    let _ = s.send_raw(&ok.to_bytes(), "callee answers").await;
    let counter = std::sync::atomic::AtomicU32::new(0);
    let reflect = media::reflect(&media, until_at, &counter);
    let bye = async {
        // The ACK may come first; wait for the BYE.
        let _ = next_request(s, Method::Ack, until_at).await;
        let bye = next_request(s, Method::Bye, until_at).await;
        if let Some(b) = &bye {
            let r = response_to(b, 200, &to_tag, None);
            let _ = s.send_raw(&r.to_bytes(), "callee confirms hang-up").await;
        }
        bye.is_some()
    };
    // Stop reflecting as soon as the BYE is answered.
    let answered = tokio::select! {
        b = bye => b,
        _ = reflect => false,
    };
    (counter.into_inner(), answered)
}

async fn next_request(s: &mut Session, method: Method, until_at: Instant) -> Option<Request> {
    loop {
        if let Some(pos) = s.incoming.iter().position(|r| r.method == method) {
            return s.incoming.remove(pos);
        }
        match s.next_message(until_at).await {
            Ok(sip_message::Message::Request(r)) => s.incoming.push_back(r),
            // Responses here belong to nothing we wait for (late retransmissions).
            Ok(sip_message::Message::Response(_)) => {}
            Err(_) => return None,
        }
    }
}

/// A response to `req` (RFC 3261 §8.2.6.2): Via, From, Call-ID, CSeq copied, To with our tag.
pub(super) fn response_to(
    req: &Request,
    status: u16,
    to_tag: &str,
    contact: Option<String>,
) -> Response {
    let mut r = Response::new(status);
    for v in req.headers.get_all("Via") {
        r.headers.push("Via", v);
    }
    for rr in req.headers.get_all("Record-Route") {
        r.headers.push("Record-Route", rr);
    }
    if let Some(v) = req.headers.get("From") {
        r.headers.push("From", v);
    }
    if let Some(to) = req.headers.get("To") {
        let tagged = if to.contains(";tag=") || to_tag.is_empty() {
            to.to_owned()
        } else {
            format!("{to};tag={to_tag}")
        };
        r.headers.push("To", tagged);
    }
    for name in ["Call-ID", "CSeq"] {
        if let Some(v) = req.headers.get(name) {
            r.headers.push(name, v);
        }
    }
    if let Some(c) = contact {
        r.headers.push("Contact", c);
    }
    r.headers.push("Content-Length", "0");
    r
}

/// Two probe accounts on the same server, like PrivateServer's self-test: `callee` registers
/// and answers (reflecting RTP), `caller` calls it and measures the audio both ways.
#[tracing::instrument(name = "probe", skip_all, fields(probe = "call_between", host = %target.host, transport = %target.transport))]
pub async fn call_between(
    target: &ProbeTarget,
    caller: &Credentials,
    callee: &Credentials,
    opts: &ProbeOptions,
) -> ProbeReport {
    let mut ctx = Ctx::new("call_between");
    let mut b = match open(target, opts, &mut ctx).await {
        Ok(s) => s,
        Err(v) => return ctx.finish(None, v),
    };
    let (rv, _) = do_register(&mut b, callee, opts).await;
    if rv.category != Category::Ok {
        let v = verdict(
            rv.category,
            format!(
                "the callee account {} could not register: {}",
                callee.user, rv.summary
            ),
            rv.status,
        );
        return ctx.finish(Some(b), v);
    }
    let mut actx = Ctx::new("call_between");
    actx.start = ctx.start;
    let mut a = match open(target, opts, &mut actx).await {
        Ok(s) => s,
        Err(v) => return ctx.finish(Some(b), v),
    };
    let b_until = ctx.start + opts.timeout_total;
    let ((reflected, _), v) = tokio::join!(
        uas_answer(&mut b, callee, b_until),
        do_call(
            &mut a,
            caller,
            &callee.user,
            opts,
            CallKind::Echo,
            &mut actx
        )
    );
    ctx.media = actx.media.take();
    ctx.setup_ms = actx.setup_ms;
    // Leave the callee account as we found it: remove our binding.
    let contact = format!("<{}>", b.contact_uri(&callee.user));
    b.deadline = b.deadline.max(Instant::now() + b.timers.t1 * 8);
    let req = register_request(&mut b, callee, &contact, 0);
    let _ = b.transact_with_auth(req, callee, opts, None).await;
    for e in &mut b.trace {
        e.note = if e.note.is_empty() {
            "callee".to_owned()
        } else {
            format!("callee: {}", e.note)
        };
    }
    ctx.trace.extend(b.trace);
    let mut v = v;
    if v.category == Category::Ok
        || v.category == Category::MediaNoEcho
        || v.category == Category::MediaDegraded
    {
        v.summary = format!(
            "{} ({} -> {}; the callee reflected {reflected} packets)",
            v.summary, caller.user, callee.user
        );
    }
    if let Some(status) = v.status
        && v.category != Category::Ok
        && category_for_status(status) == Category::Ok
        && reflected == 0
    {
        v.summary.push_str("; no RTP reached the callee");
    }
    ctx.finish(Some(a), v)
}
