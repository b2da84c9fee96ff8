//! The HEP event window (`sip-events`) seen through server-state's [`TraceWindow`]: the SIP
//! trace of a server that sends it to `dialtone collect` instead of into `sip_trace`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use server_state::{CallParties, CallRecord, Error, RegAttempt, Result, TraceWindow};
use sip_events::EventWindow;

/// An events file written by `dialtone collect`, opened on first use (a collector that has
/// not written it yet is reported by the reads, not at start).
#[derive(Debug)]
pub struct HepWindow {
    path: PathBuf,
    window: tokio::sync::OnceCell<EventWindow>,
}

impl HepWindow {
    pub fn new(path: &Path) -> HepWindow {
        HepWindow {
            path: path.to_path_buf(),
            window: tokio::sync::OnceCell::new(),
        }
    }

    async fn window(&self) -> Result<&EventWindow> {
        self.window
            .get_or_try_init(|| EventWindow::open(&self.path))
            .await
            .map_err(|e| err(&self.path, e))
    }
}

fn err(path: &Path, e: sip_events::Error) -> Error {
    Error::Database(format!("HEP event window {}: {e}", path.display()))
}

#[async_trait::async_trait]
impl TraceWindow for HepWindow {
    fn describe(&self) -> String {
        format!("HEP event window {}", self.path.display())
    }

    async fn registration_attempts(
        &self,
        user: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<RegAttempt>> {
        let events = self
            .window()
            .await?
            .registration_attempts(user, since)
            .await
            .map_err(|e| err(&self.path, e))?;
        // The window answers newest first; the trait wants oldest first.
        Ok(events
            .into_iter()
            .rev()
            .map(|e| RegAttempt {
                at: e.at,
                source: if e.transport.is_empty() {
                    e.source
                } else {
                    format!("{}:{}", e.transport.to_ascii_lowercase(), e.source)
                },
                status: e.status,
                reason: if e.status == RegAttempt::NO_REPLY && e.reason.is_empty() {
                    "no final response in the HEP window".into()
                } else {
                    e.reason
                },
                auth_user: e.auth_user,
            })
            .collect())
    }

    async fn calls(&self, user: &str, since: DateTime<Utc>, max: usize) -> Result<Vec<CallRecord>> {
        let calls = self
            .window()
            .await?
            .calls(user, since, max)
            .await
            .map_err(|e| err(&self.path, e))?;
        Ok(calls
            .into_iter()
            .map(|c| CallRecord {
                at: c.at,
                duration_s: match (c.answered_at, c.ended_at) {
                    (Some(a), Some(e)) if e > a => (e - a).num_milliseconds() as f64 / 1000.0,
                    _ => 0.0,
                },
                caller: c.caller,
                callee: c.callee,
                dialled: c.dialled,
                status: c.status,
                reason: c.reason,
                route: None,
                call_id: c.call_id,
            })
            .collect())
    }

    async fn call_parties(&self, call_ids: &[String]) -> Result<HashMap<String, CallParties>> {
        let parties = self
            .window()
            .await?
            .call_parties(call_ids)
            .await
            .map_err(|e| err(&self.path, e))?;
        Ok(parties
            .into_iter()
            .map(|(id, p)| {
                (
                    id,
                    CallParties {
                        caller: p.caller,
                        callee: p.callee,
                        dialled: p.dialled,
                    },
                )
            })
            .collect())
    }

    async fn span(&self) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>> {
        let s = self
            .window()
            .await?
            .stats()
            .await
            .map_err(|e| err(&self.path, e))?;
        Ok(s.oldest_event.zip(s.newest_event))
    }
}
