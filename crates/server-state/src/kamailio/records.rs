//! Call records and REGISTER attempts from whatever this server keeps: `acc` with whichever
//! columns it has, joined by Call-ID with the SIP trace (`sip_trace` table, or a HEP window kept
//! by dialtone) when `acc` cannot tell whose call a row is; or the window alone.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::attempts::trace_time;
use super::db::{Bind, Col};
use super::schema::{AccColumns, Schema};
use super::{KamailioState, TracedMsg, pair_register_attempts, unix_time};
use crate::sipscan::{self, StartLine};
use crate::window::CallParties;
use crate::{CallRecord, Error, RegAttempt, Result};

/// How many Call-IDs one `IN (...)` query carries.
const CALL_ID_BATCH: usize = 200;

const FIX_TRACE: &str = "trace REGISTER and INVITE with siptrace into the sip_trace table, or send them over HEP to `dialtone collect` and set [management] events_db";

impl KamailioState {
    /// The schema, discovered once (a failed discovery is retried on the next call).
    pub(crate) async fn schema(&self) -> Result<Arc<Schema>> {
        let mut cached = self.schema.lock().await;
        if let Some(s) = cached.as_ref() {
            return Ok(s.clone());
        }
        let s = Arc::new(Schema::discover(&self.db, self.cfg.timeout).await?);
        *cached = Some(s.clone());
        Ok(s)
    }

    /// True when `table` exists and holds at least one row.
    pub(crate) async fn table_has_rows(&self, schema: &Schema, table: &str) -> Result<bool> {
        if !schema.has(table) {
            return Ok(false);
        }
        let rows = self
            .rows(table, format!("SELECT 1 FROM {table} LIMIT 1"), &[], &[])
            .await?;
        Ok(!rows.is_empty())
    }

    /// Whether to read `table`: it exists, and when a HEP window is configured too, it holds
    /// rows (a table `kamdbctl` created that no module writes to is no evidence, and then the
    /// window is the trace).
    pub(crate) async fn table_in_use(&self, schema: &Schema, table: &str) -> Result<bool> {
        if self.cfg.events.is_none() {
            return Ok(schema.has(table));
        }
        self.table_has_rows(schema, table).await
    }

    pub(crate) async fn attempts(
        &self,
        user: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<RegAttempt>> {
        let schema = self.schema().await?;
        if self.table_in_use(&schema, "sip_trace").await? {
            return self.trace_attempts(user, since).await;
        }
        if let Some(w) = &self.cfg.events {
            return w.registration_attempts(user, since).await;
        }
        Err(Error::missing(
            no_trace_why(&schema, "REGISTER attempts are not recorded"),
            Some(FIX_TRACE),
        ))
    }

    async fn trace_attempts(&self, user: &str, since: DateTime<Utc>) -> Result<Vec<RegAttempt>> {
        let d = &self.db;
        // traced_user is the From user when the server sets it (the lab does); otherwise fall back
        // to the stored message's From/To.
        let sql = format!(
            "SELECT {}, {}, {}, {}, {}, {} FROM sip_trace \
             WHERE (traced_user = $1 OR (traced_user = '' AND msg LIKE $2)) AND {} >= $3 \
             ORDER BY id",
            d.t("callid"),
            d.epoch("time_stamp"),
            d.f("time_us"),
            d.t("fromip"),
            d.t("direction"),
            d.t("msg"),
            d.epoch("time_stamp"),
        );
        let like = format!("%sip:{user}@%");
        let rows = self
            .rows(
                "sip_trace",
                sql,
                &[
                    Col::Text,
                    Col::Real,
                    Col::Real,
                    Col::Text,
                    Col::Text,
                    Col::Text,
                ],
                &[
                    Bind::Text(user.into()),
                    Bind::Text(like),
                    Bind::Real(since.timestamp() as f64 - 1.0),
                ],
            )
            .await?;
        let traced: Vec<TracedMsg> = rows
            .iter()
            .map(|r| TracedMsg {
                call_id: r.text(0).to_string(),
                at: trace_time(r.real(1), r.real(2)),
                source: r.text(3).to_string(),
                msg: r.text(5).to_string(),
            })
            .collect();
        let mut out = pair_register_attempts(user, &traced);
        out.retain(|a| a.at >= since);
        Ok(out)
    }

    pub(crate) async fn call_records(
        &self,
        user: &str,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<CallRecord>> {
        let schema = self.schema().await?;
        let acc = schema.acc_columns(&self.cfg.columns);
        let acc_used = acc.present && self.table_in_use(&schema, "acc").await?;
        if acc_used && acc.has_parties() {
            return self.acc_calls(&acc, user, since, limit).await;
        }
        // acc cannot tell whose calls its rows are (or there is no acc): the trace can.
        let trace = self.table_in_use(&schema, "sip_trace").await?;
        if trace && !acc_used {
            let calls = self.trace_calls(user, since).await?;
            return Ok(self.calls_from_trace(calls, limit));
        }
        let parties = if trace {
            Some(
                self.trace_calls(user, since)
                    .await?
                    .into_iter()
                    .map(|(id, c)| (id, c.parties))
                    .collect(),
            )
        } else if let Some(w) = &self.cfg.events {
            if !acc_used {
                let mut calls = w.calls(user, since, limit).await?;
                for c in &mut calls {
                    c.route = self.derive_route(&c.dialled, &c.callee);
                }
                return Ok(calls);
            }
            let calls = w.calls(user, since, 1000).await?;
            Some(
                calls
                    .into_iter()
                    .map(|c| {
                        (
                            c.call_id.clone(),
                            CallParties {
                                caller: c.caller,
                                callee: c.callee,
                                dialled: c.dialled,
                            },
                        )
                    })
                    .collect(),
            )
        } else {
            None
        };
        match parties {
            Some(p) => self.acc_calls_by_id(&acc, p, limit).await,
            None => Err(Error::missing(
                no_calls_why(&schema, &acc, acc_used),
                Some(if acc.present {
                    "add db_extra columns for the caller and callee to the acc module (src_user=$fU;dst_user=$rU;dst_ouser=$tU) and name them in [management.columns] if they are not the usual ones, or send the SIP trace over HEP to `dialtone collect` and set [management] events_db"
                } else {
                    "store call records with the acc module into this database (db_flag), or send the SIP trace over HEP to `dialtone collect` and set [management] events_db"
                }),
            )),
        }
    }

    /// `acc` with columns naming the parties (the common extras, or configured ones).
    async fn acc_calls(
        &self,
        acc: &AccColumns,
        user: &str,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<CallRecord>> {
        let d = &self.db;
        let col = |c: &Option<String>| {
            c.as_ref()
                .map(|c| d.t(&format!("a.{c}")))
                .unwrap_or_else(|| "NULL".into())
        };
        let mut who = Vec::new();
        for c in [&acc.caller, &acc.callee].into_iter().flatten() {
            who.push(format!("a.{c} = $1"));
        }
        let (join, cdr_route, cdr_duration) = cdr_parts(d, acc);
        let sql = format!(
            "SELECT {}, {}, {}, {}, {}, {}, {}, {}, {}, {} \
             FROM acc a {join} \
             WHERE a.method = 'INVITE' AND ({}) AND {} >= $2 \
             ORDER BY a.time DESC, a.id DESC LIMIT $3",
            d.t("a.callid"),
            d.t("a.sip_code"),
            d.t("a.sip_reason"),
            d.epoch("a.time"),
            col(&acc.caller),
            col(&acc.dialled),
            col(&acc.callee),
            col(&acc.route),
            cdr_route,
            cdr_duration,
            who.join(" OR "),
            d.epoch("a.time"),
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .rows(
                "acc",
                sql,
                &ACC_COLS,
                &[
                    Bind::Text(user.into()),
                    Bind::Real(since.timestamp() as f64),
                    Bind::Int(limit),
                ],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let callee = r.text(6).to_string();
                let dialled = match r.text(5) {
                    "" => callee.clone(),
                    d => d.to_string(),
                };
                self.record(r, r.text(4).to_string(), callee, dialled)
            })
            .collect())
    }

    /// Stock `acc`: the rows of the calls the trace says are the user's, by Call-ID.
    async fn acc_calls_by_id(
        &self,
        acc: &AccColumns,
        parties: HashMap<String, CallParties>,
        limit: usize,
    ) -> Result<Vec<CallRecord>> {
        let d = &self.db;
        let ids: Vec<String> = parties.keys().cloned().collect();
        let mut out = Vec::new();
        for chunk in ids.chunks(CALL_ID_BATCH) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 1)).collect();
            let (join, cdr_route, cdr_duration) = cdr_parts(d, acc);
            let sql = format!(
                "SELECT {}, {}, {}, {}, NULL, NULL, NULL, {}, {}, {} FROM acc a {join} \
                 WHERE a.method = 'INVITE' AND a.callid IN ({}) ORDER BY a.time DESC, a.id DESC",
                d.t("a.callid"),
                d.t("a.sip_code"),
                d.t("a.sip_reason"),
                d.epoch("a.time"),
                acc.route
                    .as_ref()
                    .map(|c| d.t(&format!("a.{c}")))
                    .unwrap_or_else(|| "NULL".into()),
                cdr_route,
                cdr_duration,
                marks.join(", ")
            );
            let binds: Vec<Bind> = chunk.iter().map(|c| Bind::Text(c.clone())).collect();
            let rows = self.rows("acc", sql, &ACC_COLS, &binds).await?;
            for r in &rows {
                let p = parties.get(r.text(0)).cloned().unwrap_or_default();
                out.push(self.record(r, p.caller, p.callee, p.dialled));
            }
        }
        out.sort_by_key(|c| std::cmp::Reverse(c.at));
        out.truncate(limit);
        Ok(out)
    }

    /// Without call records, the trace's own final replies give each call's outcome.
    fn calls_from_trace(&self, calls: HashMap<String, TraceCall>, limit: usize) -> Vec<CallRecord> {
        let mut out: Vec<CallRecord> = calls
            .into_iter()
            .map(|(call_id, c)| {
                let route = self.derive_route(&c.parties.dialled, &c.parties.callee);
                CallRecord {
                    at: c.at,
                    caller: c.parties.caller,
                    callee: c.parties.callee,
                    dialled: c.parties.dialled,
                    status: c.status,
                    reason: if c.status == 0 {
                        "no final response in the trace".into()
                    } else {
                        c.reason
                    },
                    duration_s: 0.0,
                    route,
                    call_id,
                }
            })
            .collect();
        out.sort_by_key(|c| std::cmp::Reverse(c.at));
        out.truncate(limit);
        out
    }

    fn record(
        &self,
        r: &super::db::Row0,
        caller: String,
        callee: String,
        dialled: String,
    ) -> CallRecord {
        let route = [r.text(7), r.text(8)]
            .into_iter()
            .find(|s| !s.is_empty())
            .map(str::to_string)
            .or_else(|| self.derive_route(&dialled, &callee));
        CallRecord {
            at: unix_time(r.real(3)),
            caller,
            callee,
            dialled,
            status: r.text(1).trim().parse().unwrap_or(0),
            reason: r.text(2).to_string(),
            duration_s: r.real(9).unwrap_or(0.0),
            route,
            call_id: r.text(0).to_string(),
        }
    }

    /// Calls of `user` in `sip_trace`: the INVITEs that name the user, by Call-ID, with the
    /// parties the signalling shows (the first incoming INVITE's From and Request-URI users, the
    /// relayed INVITE's Request-URI user as the callee), and the final status sent back to the
    /// caller when the reply was traced.
    async fn trace_calls(
        &self,
        user: &str,
        since: DateTime<Utc>,
    ) -> Result<HashMap<String, TraceCall>> {
        let d = &self.db;
        let sql = format!(
            "SELECT {}, {}, {}, {}, {} FROM sip_trace \
             WHERE method = 'INVITE' AND msg LIKE $1 AND {} >= $2 ORDER BY id LIMIT 4000",
            d.t("callid"),
            d.t("direction"),
            d.t("msg"),
            d.epoch("time_stamp"),
            d.f("time_us"),
            d.epoch("time_stamp"),
        );
        let rows = self
            .rows(
                "sip_trace",
                sql,
                &[Col::Text, Col::Text, Col::Text, Col::Real, Col::Real],
                &[
                    Bind::Text(format!("%sip:{user}@%")),
                    Bind::Real(since.timestamp() as f64 - 1.0),
                ],
            )
            .await?;
        let mut out: HashMap<String, TraceCall> = HashMap::new();
        for r in &rows {
            let msg = r.text(2);
            let outgoing = r.text(1).eq_ignore_ascii_case("out");
            match sipscan::start_line(msg) {
                Some(StartLine::Request { method }) if method.eq_ignore_ascii_case("INVITE") => {
                    let ruri_user = request_uri_user(msg).unwrap_or_default();
                    let from = sipscan::header(msg, "From", Some("f"))
                        .and_then(sipscan::uri_user)
                        .unwrap_or_default();
                    let to = sipscan::header(msg, "To", Some("t"))
                        .and_then(sipscan::uri_user)
                        .unwrap_or_default();
                    let e = out
                        .entry(r.text(0).to_string())
                        .or_insert_with(|| TraceCall {
                            at: trace_time(r.real(3), r.real(4)),
                            ..TraceCall::default()
                        });
                    if outgoing {
                        if !ruri_user.is_empty() {
                            e.parties.callee = ruri_user.to_string();
                        }
                    } else if e.parties.caller.is_empty() {
                        e.parties.caller = from.to_string();
                        e.parties.dialled =
                            if ruri_user.is_empty() { to } else { ruri_user }.to_string();
                    }
                }
                // The final answer the proxy sent back to the caller wins over one it received.
                Some(StartLine::Status { code, reason }) if code >= 200 => {
                    if let Some(e) = out.get_mut(r.text(0))
                        && (outgoing || e.status == 0)
                    {
                        e.status = code;
                        e.reason = reason.to_string();
                    }
                }
                _ => {}
            }
        }
        for c in out.values_mut() {
            if c.parties.callee.is_empty() {
                c.parties.callee = c.parties.dialled.clone();
            }
        }
        // Only the user's own calls: as caller, or as the user the call reached.
        out.retain(|_, c| {
            let p = &c.parties;
            p.caller == user || p.callee == user || p.dialled == user
        });
        Ok(out)
    }
}

/// One call as the SIP trace shows it.
#[derive(Debug, Default)]
pub(crate) struct TraceCall {
    at: DateTime<Utc>,
    parties: CallParties,
    status: u16,
    reason: String,
}

/// The `acc_cdrs` join and its route and duration columns (NULL where the server has none).
fn cdr_parts(d: &super::db::Db, acc: &AccColumns) -> (&'static str, String, String) {
    let join = if acc.cdr_route || acc.cdr_duration {
        "LEFT JOIN acc_cdrs c ON c.callid = a.callid"
    } else {
        ""
    };
    let route = if acc.cdr_route {
        d.t("c.route")
    } else {
        "NULL".into()
    };
    let duration = if acc.cdr_duration {
        d.f("c.duration")
    } else {
        "NULL".into()
    };
    (join, route, duration)
}

const ACC_COLS: [Col; 10] = [
    Col::Text,
    Col::Text,
    Col::Text,
    Col::Real,
    Col::Text,
    Col::Text,
    Col::Text,
    Col::Text,
    Col::Text,
    Col::Real,
];

/// The user part of a request's Request-URI.
fn request_uri_user(msg: &str) -> Option<&str> {
    let line = msg.lines().next()?;
    let uri = line.split_whitespace().nth(1)?;
    sipscan::uri_user(uri)
}

fn no_trace_why(schema: &Schema, what: &str) -> String {
    let table = if schema.has("sip_trace") {
        "the sip_trace table is empty (siptrace does not write to the database)"
    } else {
        "there is no sip_trace table"
    };
    format!("{what}: {table} and no HEP event window is configured ([management] events_db)")
}

fn no_calls_why(schema: &Schema, acc: &AccColumns, acc_used: bool) -> String {
    let trace = if schema.has("sip_trace") {
        "the sip_trace table is empty"
    } else {
        "there is no sip_trace table"
    };
    if !acc.present {
        format!(
            "there is no acc table in this database, {trace} and no HEP event window is configured"
        )
    } else if !acc_used {
        format!(
            "the acc table is empty (the acc module does not write to this database), {trace} and no HEP event window is configured"
        )
    } else {
        format!(
            "acc has no column naming the caller or callee (it has {}) and there is no SIP trace to tell whose calls they are ({trace}, no HEP event window configured)",
            schema
                .tables
                .get("acc")
                .map(|c| c.iter().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default()
        )
    }
}
