//! The probes: OPTIONS, REGISTER (and un-REGISTER), a call with RTP measurement, an echo call,
//! and a call between two probe accounts. Each returns a [`ProbeReport`]; none returns an error.

mod between;
mod call;
mod register;

use crate::report::{Category, MediaStats, ProbeReport, ResolutionStep, TlsInfo, Verdict};
use crate::resolve::resolve;
use crate::tls::{Captured, client_config};
use crate::transport::{Conn, ConnectError};
use crate::uac::{Session, TsxResult, until, verdict_for};
use crate::{ProbeOptions, ProbeTarget, Transport};
pub use between::call_between;
pub use call::{call, echo};
pub use register::{register, unregister};
use sip_message::{Method, Uri};
use std::sync::{Arc, Mutex};
use std::time::Instant;

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
