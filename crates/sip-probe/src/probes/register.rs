//! The REGISTER probe, and the un-REGISTER that removes the probe's binding.

use super::{Ctx, open};
use crate::report::{Category, ProbeReport, Verdict};
use crate::uac::{Session, TsxResult, verdict_for};
use crate::{Credentials, ProbeOptions, ProbeTarget};
use sip_message::{Method, NameAddr, Request, Response, Uri};

pub(super) fn register_request(
    s: &mut Session,
    creds: &Credentials,
    contact: &str,
    expires: u32,
) -> Request {
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

pub(super) async fn do_register(
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
