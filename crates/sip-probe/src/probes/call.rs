//! Calls: a call with RTP measurement and the echo call, with the dialog they hold open.

use super::between::response_to;
use super::{Ctx, open, verdict};
use crate::media::{self, Tally};
use crate::report::{Category, MediaStats, ProbeReport, Verdict};
use crate::transport::bind_ip_for;
use crate::uac::{Session, TsxResult, verdict_for};
use crate::{Credentials, ProbeOptions, ProbeTarget};
use sip_message::sdp::SessionDescription;
use sip_message::{Method, Request, Uri};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum CallKind {
    Plain,
    Echo,
}

/// INVITE `to` with a PCMU/PCMA offer; on answer, ACK, send RTP for `opts.media_window`, BYE.
/// Media is measured, but only [`echo`] turns missing echoes into the verdict.
#[tracing::instrument(name = "probe", skip_all, fields(probe = "call", host = %target.host, transport = %target.transport))]
pub async fn call(
    target: &ProbeTarget,
    creds: &Credentials,
    to: &str,
    opts: &ProbeOptions,
) -> ProbeReport {
    let mut ctx = Ctx::new("call");
    match open(target, opts, &mut ctx).await {
        Ok(mut s) => {
            let v = do_call(&mut s, creds, to, opts, CallKind::Plain, &mut ctx).await;
            ctx.finish(Some(s), v)
        }
        Err(v) => ctx.finish(None, v),
    }
}

/// A call to the echo service `number`: connected, and the audio we send comes back.
#[tracing::instrument(name = "probe", skip_all, fields(probe = "echo", host = %target.host, transport = %target.transport))]
pub async fn echo(
    target: &ProbeTarget,
    creds: &Credentials,
    number: &str,
    opts: &ProbeOptions,
) -> ProbeReport {
    let mut ctx = Ctx::new("echo");
    match open(target, opts, &mut ctx).await {
        Ok(mut s) => {
            let v = do_call(&mut s, creds, number, opts, CallKind::Echo, &mut ctx).await;
            ctx.finish(Some(s), v)
        }
        Err(v) => ctx.finish(None, v),
    }
}

/// The dialog state a UAC keeps after a 2xx (RFC 3261 §12.1.2).
struct Dialog {
    remote_target: Uri,
    route_set: Vec<String>,
    to: String,
    invite_seq: u32,
}

fn in_dialog(s: &mut Session, d: &Dialog, method: Method, from_user: &str, seq: u32) -> Request {
    let mut r = s.request(
        method.clone(),
        d.remote_target.clone(),
        from_user,
        d.remote_target.clone(),
        None,
    );
    r.headers.set("To", d.to.clone());
    r.headers.set("CSeq", format!("{seq} {method}"));
    for route in &d.route_set {
        r.headers.push("Route", route.clone());
    }
    r
}

fn media_verdict(
    m: &MediaStats,
    opts: &ProbeOptions,
    setup_ms: u64,
    kind: CallKind,
    status: u16,
) -> Verdict {
    let rtt = m.rtt_avg_ms.map_or("-".to_owned(), |v| format!("{v:.2}"));
    let jitter = m.jitter_ms.unwrap_or(0.0);
    let base = format!(
        "call connected in {setup_ms} ms; {} of {} RTP packets came back (loss {:.1}%, rtt avg {rtt} ms, jitter {jitter:.2} ms)",
        m.echoed,
        m.sent,
        m.loss * 100.0
    );
    if kind == CallKind::Echo && m.echoed == 0 {
        return verdict(
            Category::MediaNoEcho,
            format!("{base}: no audio came back from {}", m.remote),
            Some(status),
        );
    }
    if kind == CallKind::Echo && (m.loss > opts.max_loss || jitter > opts.max_jitter_ms) {
        return verdict(
            Category::MediaDegraded,
            format!("{base}: audio is degraded"),
            Some(status),
        );
    }
    verdict(Category::Ok, base, Some(status))
}

pub(super) async fn do_call(
    s: &mut Session,
    creds: &Credentials,
    to: &str,
    opts: &ProbeOptions,
    kind: CallKind,
    ctx: &mut Ctx,
) -> Verdict {
    if to.is_empty() || to.contains(|c: char| c.is_whitespace() || c == '@' || c == '<' || c == '>')
    {
        return verdict(
            Category::BadResponse,
            format!("invalid number or user to call: {to:?}"),
            None,
        );
    }
    let local_ip = if s.local.ip().is_unspecified() {
        bind_ip_for(s.remote.ip())
    } else {
        s.local.ip()
    };
    let media = match UdpSocket::bind(SocketAddr::new(local_ip, 0)).await {
        Ok(m) => m,
        Err(e) => {
            return verdict(
                Category::Unreachable,
                format!("cannot open a local RTP socket: {e}"),
                None,
            );
        }
    };
    let media_local = media.local_addr().unwrap_or(SocketAddr::new(local_ip, 0));
    let offer = SessionDescription::audio_offer(
        &local_ip.to_string(),
        media_local.port(),
        rand::random::<u32>().into(),
        &[(0, "PCMU/8000"), (8, "PCMA/8000")],
    );
    let ruri = Uri::sip(Some(to), &s.domain.clone(), None);
    let mut invite = s.request(Method::Invite, ruri.clone(), &creds.user, ruri, None);
    invite
        .headers
        .push("Contact", format!("<{}>", s.contact_uri(&creds.user)));
    invite
        .headers
        .push("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS");
    invite.set_body("application/sdp", offer.to_string().into_bytes());
    // Leave room after the answer for the media window and the BYE inside the overall bound.
    let reserve = opts.media_window + opts.media_grace + Duration::from_millis(1500);
    let give_up = (s.deadline.checked_sub(reserve))
        .unwrap_or(s.deadline)
        .max(s.start + Duration::from_secs(1));
    let t_invite = Instant::now();
    let (res, sent_invite) = s
        .transact_with_auth(invite, creds, opts, Some(give_up))
        .await;
    let resp = match res {
        TsxResult::Final(r) if (200..300).contains(&r.status) => r,
        TsxResult::Bound if !s.provisional.is_empty() && Instant::now() < s.deadline => {
            return cancel(s, &sent_invite).await;
        }
        other => {
            let mut v = verdict_for(&other, "INVITE", s);
            if let TsxResult::Final(r) = &other
                && (r.status == 401 || r.status == 407)
            {
                v.category = Category::AuthRejected;
                v.summary = format!(
                    "the server challenged again after our credentials: {} {}",
                    r.status, r.reason
                );
            }
            return v;
        }
    };
    let setup_ms = t_invite.elapsed().as_millis() as u64;
    ctx.setup_ms = Some(setup_ms);
    let invite_seq = sent_invite
        .headers
        .cseq()
        .ok()
        .flatten()
        .map_or(1, |c| c.seq);
    let remote_target = resp
        .headers
        .contacts()
        .ok()
        .and_then(|c| c.first().map(|c| c.uri.clone()))
        .unwrap_or_else(|| sent_invite.uri.clone());
    // §12.1.2: the route set is the Record-Route of the 2xx, reversed.
    let route_set: Vec<String> = resp
        .headers
        .record_route()
        .unwrap_or_default()
        .iter()
        .rev()
        .map(ToString::to_string)
        .collect();
    let dialog = Dialog {
        remote_target,
        route_set,
        to: resp.headers.get("To").unwrap_or_default().to_owned(),
        invite_seq,
    };
    // ACK for a 2xx is a new transaction, end to end (§13.2.2.4).
    let ack = in_dialog(s, &dialog, Method::Ack, &creds.user, dialog.invite_seq).to_bytes();
    let _ = s.send_raw(&ack, "ACK for 2xx (§13.2.2.4)").await;

    let (answer, diags) = SessionDescription::parse(&resp.body);
    let remote_media = answer.audio().and_then(|(i, a)| {
        let c = answer.media_connection(i)?;
        let ip: std::net::IpAddr = c.address.parse().ok()?;
        let pt: u8 = a
            .formats
            .iter()
            .find_map(|f| f.parse().ok().filter(|p| *p == 0 || *p == 8))?;
        Some((SocketAddr::new(ip, a.port), pt))
    });
    let mut remote_hung_up = false;
    let mut v = match remote_media {
        Some((remote, pt)) if remote.port() != 0 => {
            let hard = s.deadline;
            let watch_until = (Instant::now() + opts.media_window + opts.media_grace).min(hard);
            // Signalling stays live during media: a retransmitted 200 is ACKed again, a BYE answered.
            // The media run ends early once every packet came back; the watch then stops too
            // (it only matters while audio flows), so a clean call costs no grace period.
            let echo = media::run_echo(
                &media,
                remote,
                pt,
                opts.media_window,
                opts.media_grace,
                hard,
            );
            let watch = watch_dialog(s, &ack, watch_until);
            tokio::pin!(echo);
            tokio::pin!(watch);
            let (tally, hung_up) = tokio::select! {
                tally = &mut echo => (tally, false),
                hung_up = &mut watch => ((&mut echo).await, hung_up),
            };
            remote_hung_up = hung_up;
            let tally: Tally = tally;
            let codec = if pt == 0 { "PCMU/8000" } else { "PCMA/8000" };
            let stats = tally.stats(media_local, remote, codec);
            let v = media_verdict(&stats, opts, setup_ms, kind, resp.status);
            ctx.media = Some(stats);
            v
        }
        _ => verdict(
            Category::BadResponse,
            format!(
                "the call was answered but the SDP answer has no usable PCMU/PCMA audio{}",
                if diags.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({})",
                        diags
                            .iter()
                            .map(|d| d.message.clone())
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                }
            ),
            Some(resp.status),
        ),
    };
    if remote_hung_up {
        v.summary
            .push_str("; the far end hung up during the media window");
        return v;
    }
    let bye_seq = s.cseq.max(dialog.invite_seq) + 1;
    s.cseq = bye_seq;
    let bye = in_dialog(s, &dialog, Method::Bye, &creds.user, bye_seq);
    // The BYE gets its own small bound even if media used the budget: leaving a call up is worse.
    s.deadline = s.deadline.max(Instant::now() + s.timers.t1 * 8);
    match s.transact(&bye, "hang up", None).await {
        TsxResult::Final(r) if r.status < 300 => {}
        other => {
            let what = match other {
                TsxResult::Final(r) => format!("{} {}", r.status, r.reason),
                _ => "no answer".to_owned(),
            };
            v.summary.push_str(&format!("; BYE got {what}"));
        }
    }
    v
}

/// Watches an established dialog until `until`: re-ACKs a retransmitted 2xx (the ACK was lost,
/// RFC 3261 §13.3.1.4, RFC 6026 §8.1), answers a BYE from the far end (returns true), and
/// refuses other mid-dialog requests with 501 so the server is not left waiting.
async fn watch_dialog(s: &mut Session, ack: &[u8], until_at: Instant) -> bool {
    loop {
        match s.next_message(until_at).await {
            Ok(sip_message::Message::Response(r)) => {
                let is_invite = r
                    .headers
                    .cseq()
                    .ok()
                    .flatten()
                    .is_some_and(|c| c.method == Method::Invite);
                if is_invite && (200..300).contains(&r.status) {
                    let _ = s
                        .send_raw(ack, "2xx retransmitted: ACK again (§13.2.2.4)")
                        .await;
                }
            }
            Ok(sip_message::Message::Request(req)) => {
                let status = if req.method == Method::Bye { 200 } else { 501 };
                if req.method != Method::Ack {
                    let r = response_to(&req, status, "", None);
                    let note = if status == 200 {
                        "the far end hung up"
                    } else {
                        "mid-dialog request not supported"
                    };
                    let _ = s.send_raw(&r.to_bytes(), note).await;
                }
                if req.method == Method::Bye {
                    return true;
                }
            }
            Err(_) => return false,
        }
    }
}

/// CANCEL the pending INVITE (§9.1): same Request-URI, Call-ID, From, To, CSeq number and
/// branch; then collect the 487 and ACK it.
async fn cancel(s: &mut Session, invite: &Request) -> Verdict {
    let mut c = Request::new(Method::Cancel, invite.uri.clone());
    for name in ["Via", "Max-Forwards", "From", "To", "Call-ID"] {
        if let Some(v) = invite.headers.get(name) {
            c.headers.push(name, v);
        }
    }
    for route in invite.headers.get_all("Route") {
        c.headers.push("Route", route);
    }
    let seq = invite.headers.cseq().ok().flatten().map_or(1, |c| c.seq);
    c.headers.push("CSeq", format!("{seq} CANCEL"));
    c.headers.push("Content-Length", "0");
    let ringing = s.provisional.clone();
    s.deadline = s.deadline.max(Instant::now() + s.timers.t1 * 8);
    let _ = s.transact(&c, "giving up: no answer in time", None).await;
    // The INVITE transaction now ends with 487; ACK it so the server stops retransmitting.
    let until = Instant::now() + s.timers.t1 * 4;
    while let Ok(r) = s.next_response(until).await {
        if r.headers
            .cseq()
            .ok()
            .flatten()
            .is_some_and(|c| c.method == Method::Invite)
            && r.status >= 300
        {
            let ack = crate::uac::ack_for_non_2xx(invite, &r);
            let _ = s.send_raw(&ack.to_bytes(), "ACK for 487").await;
            break;
        }
    }
    verdict(
        Category::Unavailable,
        format!(
            "nobody answered within the probe's time bound (provisional {:?}); the call was cancelled",
            ringing
        ),
        ringing.last().copied(),
    )
}
