//! REGISTER attempts from the SIP trace: each request paired with its final reply.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::RegAttempt;
use crate::sipscan::{self, StartLine};

use super::unix_time;

/// siptrace stores whole seconds in `time_stamp` and the microseconds in `time_us`.
pub(super) fn trace_time(secs: Option<f64>, us: Option<f64>) -> DateTime<Utc> {
    match (secs, us) {
        (Some(s), Some(us)) if us > 0.0 && us < 1e6 => unix_time(Some(s.round() + us / 1e6)),
        (s, _) => unix_time(s),
    }
}

#[derive(Debug)]
pub(crate) struct TracedMsg {
    pub call_id: String,
    pub at: DateTime<Utc>,
    pub source: String,
    pub msg: String,
}

/// Pairs each REGISTER request of `user` with the final response to it (same Call-ID and CSeq
/// number, RFC 3261 §17.1.3), in trace order.
pub(crate) fn pair_register_attempts(user: &str, traced: &[TracedMsg]) -> Vec<RegAttempt> {
    let mut out: Vec<RegAttempt> = Vec::new();
    let mut open: HashMap<(String, u32), usize> = HashMap::new();
    for t in traced {
        let Some((seq, method)) = sipscan::cseq(&t.msg) else {
            continue;
        };
        if !method.eq_ignore_ascii_case("REGISTER") {
            continue;
        }
        match sipscan::start_line(&t.msg) {
            Some(StartLine::Request { method }) if method.eq_ignore_ascii_case("REGISTER") => {
                let to_user = sipscan::header(&t.msg, "To", Some("t")).and_then(sipscan::uri_user);
                let from_user =
                    sipscan::header(&t.msg, "From", Some("f")).and_then(sipscan::uri_user);
                if to_user != Some(user) && from_user != Some(user) {
                    continue;
                }
                open.insert((t.call_id.clone(), seq), out.len());
                out.push(RegAttempt {
                    at: t.at,
                    source: t.source.clone(),
                    status: RegAttempt::NO_REPLY,
                    reason: String::new(),
                    auth_user: sipscan::auth_username(&t.msg),
                });
            }
            Some(StartLine::Status { code, reason }) if code >= 200 => {
                if let Some(&i) = open.get(&(t.call_id.clone(), seq))
                    && out[i].status == RegAttempt::NO_REPLY
                {
                    out[i].status = code;
                    out[i].reason = reason.to_string();
                }
            }
            _ => {}
        }
    }
    for a in &mut out {
        if a.status == RegAttempt::NO_REPLY {
            a.reason = "no final response in the trace".into();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn register_attempts_are_paired_with_final_replies() {
        let t = |s: i64| Utc.timestamp_opt(s, 0).unwrap();
        let req = |cseq: u32, auth: bool| TracedMsg {
            call_id: "c1".into(),
            at: t(100 + i64::from(cseq)),
            source: "udp:127.0.0.1:5098".into(),
            msg: format!(
                "REGISTER sip:127.0.0.1 SIP/2.0\r\nFrom: <sip:alice@127.0.0.1>;tag=a\r\nTo: <sip:alice@127.0.0.1>\r\nCSeq: {cseq} REGISTER\r\n{}\r\n",
                if auth {
                    "Authorization: Digest username=\"alice\", response=\"x\"\r\n"
                } else {
                    ""
                }
            ),
        };
        let rep = |cseq: u32, status: &str| TracedMsg {
            call_id: "c1".into(),
            at: t(100 + i64::from(cseq)),
            source: "udp:127.0.0.1:5060".into(),
            msg: format!("SIP/2.0 {status}\r\nCSeq: {cseq} REGISTER\r\n\r\n"),
        };
        let traced = vec![
            req(1, false),
            rep(1, "100 Trying"),
            rep(1, "401 Unauthorized"),
            req(2, true),
            rep(2, "403 Forbidden"),
            req(3, true),
        ];
        let got: Vec<(u16, String, Option<String>)> = pair_register_attempts("alice", &traced)
            .into_iter()
            .map(|a| (a.status, a.reason, a.auth_user))
            .collect();
        assert_eq!(
            got,
            vec![
                (401, "Unauthorized".into(), None),
                (403, "Forbidden".into(), Some("alice".into())),
                (
                    0,
                    "no final response in the trace".into(),
                    Some("alice".into())
                ),
            ]
        );
        assert!(pair_register_attempts("bob", &traced).is_empty());
    }
}
