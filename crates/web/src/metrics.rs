//! Prometheus metrics (request latency per route, check durations) and the request log.
//!
//! Hand-written text exposition (format 0.0.4): a few histograms do not justify a metrics stack.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// Upper bounds of the histogram buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += s;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{b}\"}} {}",
                self.counts[i]
            );
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// The app's in-process metrics.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// (method, route, status class) -> latency.
    requests: Mutex<BTreeMap<(String, String, String), Histogram>>,
    /// (check step, result) -> duration.
    checks: Mutex<BTreeMap<(String, String), Histogram>>,
}

fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', " ")
}

impl Metrics {
    pub(crate) fn observe_check(&self, step: &str, result: &str, d: Duration) {
        if let Ok(mut m) = self.checks.lock() {
            m.entry((step.to_owned(), result.to_owned()))
                .or_default()
                .observe(d);
        }
    }

    fn observe_request(&self, method: &str, route: &str, status: u16, d: Duration) {
        if let Ok(mut m) = self.requests.lock() {
            m.entry((
                method.to_owned(),
                route.to_owned(),
                format!("{}xx", status / 100),
            ))
            .or_default()
            .observe(d);
        }
    }

    /// The text exposition; `incidents` are (level, status, count).
    pub(crate) fn render(&self, incidents: &BTreeMap<(String, String), u64>) -> String {
        let mut out = String::new();
        out.push_str("# HELP dialtone_incidents Incidents by level and status.\n");
        out.push_str("# TYPE dialtone_incidents gauge\n");
        for ((level, status), n) in incidents {
            let _ = writeln!(
                out,
                "dialtone_incidents{{level=\"{}\",status=\"{}\"}} {n}",
                label(level),
                label(status)
            );
        }
        out.push_str(
            "# HELP dialtone_http_request_duration_seconds HTTP request latency by route.\n",
        );
        out.push_str("# TYPE dialtone_http_request_duration_seconds histogram\n");
        if let Ok(m) = self.requests.lock() {
            for ((method, route, class), h) in m.iter() {
                h.write(
                    &mut out,
                    "dialtone_http_request_duration_seconds",
                    &format!(
                        "method=\"{}\",route=\"{}\",status=\"{}\"",
                        label(method),
                        label(route),
                        label(class)
                    ),
                );
            }
        }
        out.push_str("# HELP dialtone_check_duration_seconds Automated check duration by step.\n");
        out.push_str("# TYPE dialtone_check_duration_seconds histogram\n");
        if let Ok(m) = self.checks.lock() {
            for ((step, result), h) in m.iter() {
                h.write(
                    &mut out,
                    "dialtone_check_duration_seconds",
                    &format!("step=\"{}\",result=\"{}\"", label(step), label(result)),
                );
            }
        }
        out
    }
}

/// The method as a label: one of the standard methods, else `other`, so an invented method
/// (any token is a valid HTTP method) never becomes a label or a log field of its own.
pub(crate) fn method_label(m: &axum::http::Method) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    KNOWN
        .iter()
        .find(|k| **k == m.as_str())
        .copied()
        .unwrap_or("other")
}

/// Middleware: times every request, logs it with its route template (never headers, so never
/// the cookie or token) and records it in the latency histogram.
pub(crate) async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    // The route is the matched template (never the raw path): a fixed set.
    let res = next.run(req).await;
    let elapsed = start.elapsed();
    let status = res.status().as_u16();
    tracing::info!(
        method,
        route = %route,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        "request"
    );
    state
        .metrics
        .observe_request(method, &route, status, elapsed);
    res
}
