//! The probes: OPTIONS, REGISTER (and un-REGISTER), a call with RTP measurement, an echo call,
//! and a call between two probe accounts. Each returns a [`ProbeReport`]; none returns an error.

use crate::media::{self, Tally};
use crate::report::{Category, MediaStats, ProbeReport, ResolutionStep, TlsInfo, Verdict};
use crate::resolve::resolve;
use crate::tls::{Captured, client_config};
use crate::transport::{Conn, ConnectError, bind_ip_for};
use crate::uac::{Session, TsxResult, category_for_status, random_token, until, verdict_for};
use crate::{Credentials, ProbeOptions, ProbeTarget, Transport};
use sip_message::sdp::SessionDescription;
use sip_message::{Method, NameAddr, Request, Response, Uri};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// Everything gathered before the verdict.
struct Ctx {
    probe: &'static str,
    start: Instant,
    resolution: Vec<ResolutionStep>,
    tls: Option<TlsInfo>,
    media: Option<MediaStats>,
    setup_ms: Option<u64>,
    trace: Vec<crate::TraceEvent>,
}

impl Ctx {
    fn new(probe: &'static str) -> Self {
        Self {
            probe,
            start: Instant::now(),
            resolution: Vec::new(),
            tls: None,
            media: None,
            setup_ms: None,
            trace: Vec::new(),
        }
    }

    fn finish(mut self, session: Option<Session>, mut verdict: Verdict) -> ProbeReport {
        if let Some(s) = session {
            self.trace.extend(s.trace);
        }
        self.trace.sort_by_key(|e| e.at_ms);
        // A certificate we went past is still the headline finding (insecure_continue).
        if let Some(t) = &self.tls
            && !t.verified
            && verdict.category != Category::Tls
        {
            verdict = Verdict {
                category: Category::Tls,
                summary: format!(
                    "the server certificate failed verification ({}); going on past it: {}",
                    t.error.as_deref().unwrap_or("unknown reason"),
                    verdict.summary
                ),
                status: verdict.status,
            };
        }
        ProbeReport {
            probe: self.probe.to_owned(),
            trace: self.trace,
            verdict,
            tls: self.tls,
            media: self.media,
            resolution: self.resolution,
            duration_ms: self.start.elapsed().as_millis() as u64,
            setup_ms: self.setup_ms,
        }
    }
}

fn verdict(category: Category, summary: impl Into<String>, status: Option<u16>) -> Verdict {
    Verdict {
        category,
        summary: summary.into(),
        status,
    }
}

/// Resolves and connects (RFC 3263 §4.3: tries each address in order), or gives the verdict.
async fn open(
    target: &ProbeTarget,
    opts: &ProbeOptions,
    ctx: &mut Ctx,
) -> Result<Session, Verdict> {
    let deadline = ctx.start + opts.timeout_total;
    let resolved = resolve(target, opts, until(deadline)).await;
    ctx.resolution = resolved.steps;
    if let Some(e) = resolved.error {
        return Err(verdict(
            Category::Dns,
            format!(
                "cannot resolve {} for {}: {e}",
                target.host, target.transport
            ),
            None,
        ));
    }
    let captured: Captured = Arc::new(Mutex::new(None));
    let tls = if target.transport == Transport::Tls {
        match client_config(
            &target.tls_trust,
            target.insecure_continue,
            captured.clone(),
        ) {
            Ok(c) => Some((c, captured.clone())),
            Err(e) => {
                return Err(verdict(
                    Category::Tls,
                    format!("cannot set up TLS: {e}"),
                    None,
                ));
            }
        }
    } else {
        None
    };
    let mut last = ConnectError::Other("no address to try".into());
    let mut notes = Vec::new();
    for addr in &resolved.addrs {
        let t0 = Instant::now();
        match Conn::connect(*addr, target, tls.clone(), deadline).await {
            Ok(conn) => {
                let mut s = Session::new(conn, target.transport, &target.domain, opts, ctx.start);
                for n in notes.drain(..) {
                    s.note(n);
                }
                if target.transport != Transport::Udp {
                    s.note(format!(
                        "{} connected to {addr} in {} ms",
                        target.transport,
                        t0.elapsed().as_millis()
                    ));
                }
                if let Some((proto, cipher)) = s.conn.tls_params()
                    && let Ok(mut slot) = captured.lock()
                    && let Some(info) = slot.as_mut()
                {
                    info.protocol = Some(proto);
                    info.cipher = Some(cipher);
                }
                ctx.tls = captured.lock().ok().and_then(|g| g.clone());
                return Ok(s);
            }
            Err(e) => {
                notes.push(format!("connect to {addr} failed: {e:?}"));
                last = e;
            }
        }
    }
    ctx.tls = captured.lock().ok().and_then(|g| g.clone());
    let where_ = resolved
        .addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    Err(match last {
        ConnectError::Refused(e) => verdict(
            Category::Refused,
            format!(
                "nothing listens on {where_} over {} ({e})",
                target.transport
            ),
            None,
        ),
        ConnectError::Unreachable(e) => verdict(
            Category::Unreachable,
            format!("{where_} cannot be reached over {} ({e})", target.transport),
            None,
        ),
        ConnectError::Timeout => verdict(
            Category::Unreachable,
            format!("connecting to {where_} over {} timed out", target.transport),
            None,
        ),
        ConnectError::Tls(e) => {
            let detail = ctx.tls.as_ref().and_then(|t| t.error.clone()).unwrap_or(e);
            verdict(
                Category::Tls,
                format!("TLS handshake with {where_} failed: {detail}"),
                None,
            )
        }
        ConnectError::Other(e) => verdict(
            Category::Unreachable,
            format!("cannot connect to {where_}: {e}"),
            None,
        ),
    })
}

/// `OPTIONS sip:domain`: is the server there and answering (RFC 3261 §11)?
#[tracing::instrument(name = "probe", skip_all, fields(probe = "options", host = %target.host, transport = %target.transport))]
pub async fn options(target: &ProbeTarget, opts: &ProbeOptions) -> ProbeReport {
    let mut ctx = Ctx::new("options");
    let mut s = match open(target, opts, &mut ctx).await {
        Ok(s) => s,
        Err(v) => return ctx.finish(None, v),
    };
    let ruri = Uri::sip(None, &target.domain, None);
    let mut req = s.request(Method::Options, ruri.clone(), "dialtone", ruri, None);
    req.headers.push("Accept", "application/sdp");
    let res = s.transact(&req, "capability query", None).await;
    let mut v = verdict_for(&res, "OPTIONS", &s);
    if let TsxResult::Final(r) = &res {
        if let Some(server) = r.headers.server().or(r.headers.user_agent()) {
            v.summary.push_str(&format!(" (server: {server})"));
        }
        // Any final answer proves the server is alive; only 2xx is "ok", but a 404/405 to
        // OPTIONS still means signalling works, so say so.
        if v.category != Category::Ok && r.status < 500 && r.status != 408 {
            v.summary
                .push_str("; the server is reachable and answering");
        }
    }
    ctx.finish(Some(s), v)
}

fn register_request(s: &mut Session, creds: &Credentials, contact: &str, expires: u32) -> Request {
    let aor = s.aor(&creds.user);
    let mut req = s.request(
        Method::Register,
        Uri::sip(None, &s.domain.clone(), None),
        &creds.user,
        aor,
        None,
    );
    req.headers.push("Contact", contact);
    req.headers.push("Expires", expires.to_string());
    req
}

/// REGISTER with our contact, answering digest challenges; unless `opts.keep_registration`,
/// the binding is removed again (Expires: 0 on the same contact) so the account is left as found.
#[tracing::instrument(name = "probe", skip_all, fields(probe = "register", host = %target.host, transport = %target.transport))]
pub async fn register(
    target: &ProbeTarget,
    creds: &Credentials,
    opts: &ProbeOptions,
) -> ProbeReport {
    let mut ctx = Ctx::new("register");
    let mut s = match open(target, opts, &mut ctx).await {
        Ok(s) => s,
        Err(v) => return ctx.finish(None, v),
    };
    let (v, _) = do_register(&mut s, creds, opts).await;
    if v.category == Category::Ok && !opts.keep_registration {
        let contact = format!("<{}>", s.contact_uri(&creds.user));
        let req = register_request(&mut s, creds, &contact, 0);
        let (res, _) = s.transact_with_auth(req, creds, opts, None).await;
        if !matches!(&res, TsxResult::Final(r) if r.status == 200) {
            s.note("removing the probe's binding again did not get 200");
        }
    }
    ctx.finish(Some(s), v)
}

async fn do_register(
    s: &mut Session,
    creds: &Credentials,
    opts: &ProbeOptions,
) -> (Verdict, Option<Response>) {
    let contact_uri = s.contact_uri(&creds.user);
    let contact = format!("<{contact_uri}>");
    let req = register_request(s, creds, &contact, opts.register_expires);
    let (mut res, _) = s.transact_with_auth(req, creds, opts, None).await;
    // 423 Interval Too Brief: retry once with the server's Min-Expires (RFC 3261 §10.2.8).
    if let TsxResult::Final(r) = &res
        && r.status == 423
        && let Some(min) = r
            .headers
            .get("Min-Expires")
            .and_then(|v| v.trim().parse::<u32>().ok())
        && min > opts.register_expires
    {
        let req = register_request(s, creds, &contact, min);
        res = s.transact_with_auth(req, creds, opts, None).await.0;
    }
    let mut v = verdict_for(&res, "REGISTER", s);
    let TsxResult::Final(r) = res else {
        return (v, None);
    };
    if v.category == Category::Ok {
        // RFC 3261 §10.2.4: the 200 lists every current binding, each with its expiry.
        let contacts = r.headers.contacts().unwrap_or_default();
        let ours = contacts
            .iter()
            .find(|c| c.uri.host == contact_uri.host && c.uri.port == contact_uri.port);
        let expires = ours
            .and_then(NameAddr::expires)
            .or(r.headers.expires().ok().flatten());
        v.summary = match (ours, expires) {
            (Some(_), Some(e)) => format!(
                "registered {} (expires in {e} s, {} binding(s) for the account)",
                creds.user,
                contacts.len()
            ),
            (Some(_), None) => format!("registered {} ({} binding(s))", creds.user, contacts.len()),
            (None, _) => {
                v.category = Category::BadResponse;
                format!(
                    "REGISTER got 200 but the answer does not list our contact {contact_uri} ({} binding(s) listed)",
                    contacts.len()
                )
            }
        };
    } else if r.status == 401 || r.status == 407 {
        v.summary = format!(
            "the server challenged again after our credentials: {} {} (wrong password?)",
            r.status, r.reason
        );
    }
    (v, Some(r))
}

/// REGISTER with `Contact: *` and `Expires: 0` (RFC 3261 §10.2.2): removes every binding of the account.
#[tracing::instrument(name = "probe", skip_all, fields(probe = "unregister", host = %target.host, transport = %target.transport))]
pub async fn unregister(
    target: &ProbeTarget,
    creds: &Credentials,
    opts: &ProbeOptions,
) -> ProbeReport {
    let mut ctx = Ctx::new("unregister");
    let mut s = match open(target, opts, &mut ctx).await {
        Ok(s) => s,
        Err(v) => return ctx.finish(None, v),
    };
    let req = register_request(&mut s, creds, "*", 0);
    let (res, _) = s.transact_with_auth(req, creds, opts, None).await;
    let mut v = verdict_for(&res, "un-REGISTER", &s);
    if v.category == Category::Ok {
        v.summary = format!("removed every registration of {}", creds.user);
    }
    ctx.finish(Some(s), v)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CallKind {
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

async fn do_call(
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
fn response_to(req: &Request, status: u16, to_tag: &str, contact: Option<String>) -> Response {
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
