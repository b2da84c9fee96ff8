//! The support lead's reports page (`/reports`, leads and admins), each report's CSV and JSON
//! (`/reports/NAME.csv`, `/reports/NAME.json`, `/api/reports/NAME`), and `/metrics` with the
//! time-to-resolve histogram from the same aggregates.
//!
//! Charts are SVG drawn here, on the server, and shown as `<img>` `data:` URIs (no script, no
//! markup of ours mixed with data): horizontal bars for figures per row, stacked columns for
//! outcomes over time.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use incidents::{Bucket, Report, ReportFilter, ReportKind, cell_text};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{ApiUser, CurrentUser, PageUser, Role};
use crate::error::{ApiError, AppError, AppResult, PageError};
use crate::labels;
use crate::pages::Nav;

/// The filters of every report, as the form and the URLs carry them (empty means no filter).
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct ReportQuery {
    from: Option<String>,
    to: Option<String>,
    runbook: Option<String>,
    level: Option<String>,
    agent: Option<String>,
    bucket: Option<String>,
    /// `/api/reports/NAME?format=csv`.
    format: Option<String>,
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn parse_time(field: &str, text: &str) -> AppResult<DateTime<Utc>> {
    incidents::parse_when(text).ok_or_else(|| {
        AppError::BadRequest(format!(
            "{field} {text:?}: expected YYYY-MM-DD or an RFC 3339 time"
        ))
    })
}

impl ReportQuery {
    fn filter(&self) -> AppResult<ReportFilter> {
        Ok(ReportFilter {
            from: non_empty(&self.from)
                .map(|t| parse_time("from", t))
                .transpose()?,
            to: non_empty(&self.to)
                .map(|t| parse_time("to", t))
                .transpose()?,
            runbook: non_empty(&self.runbook).map(str::to_owned),
            level: non_empty(&self.level).map(str::to_owned),
            agent: non_empty(&self.agent).map(str::to_owned),
            bucket: match non_empty(&self.bucket) {
                Some(b) => b
                    .parse::<Bucket>()
                    .map_err(|e| AppError::BadRequest(e.to_string()))?,
                None => Bucket::Day,
            },
        })
    }

    /// The filters as a query string for the download links ("" when none).
    fn query_string(&self) -> String {
        let pairs: Vec<String> = [
            ("from", &self.from),
            ("to", &self.to),
            ("runbook", &self.runbook),
            ("level", &self.level),
            ("agent", &self.agent),
            ("bucket", &self.bucket),
        ]
        .iter()
        .filter_map(|(k, v)| non_empty(v).map(|v| format!("{k}={}", url_encode(v))))
        .collect();
        if pairs.is_empty() {
            String::new()
        } else {
            format!("?{}", pairs.join("&"))
        }
    }
}

fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn require_lead(user: &CurrentUser) -> AppResult<()> {
    user.require(user.role >= Role::Lead, "the reports (leads and admins)")
}

fn kind_of(name: &str) -> AppResult<ReportKind> {
    name.parse::<ReportKind>()
        .map_err(|e| AppError::NotFound(e.to_string()))
}

/// One report as the page shows it.
struct ReportView {
    name: &'static str,
    title: &'static str,
    explanation: &'static str,
    columns: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    /// The chart as a `data:image/svg+xml` URI, if the report has something to draw.
    chart: Option<String>,
    chart_alt: String,
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage {
    nav: Option<Nav>,
    from: String,
    to: String,
    runbook: String,
    level: String,
    agent: String,
    week: bool,
    query: String,
    reports: Vec<ReportView>,
}

pub(crate) async fn page(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Query(q): Query<ReportQuery>,
) -> Result<Response, PageError> {
    require_lead(&user)?;
    let filter = q.filter()?;
    let mut reports = Vec::new();
    for kind in ReportKind::ALL {
        let r = state
            .store
            .report(kind, &filter)
            .await
            .map_err(AppError::from)?;
        // The page speaks the runbooks' words; the downloads keep the ids.
        let r = in_words(&state.runbooks, r);
        let chart = chart(&r);
        reports.push(ReportView {
            name: kind.name(),
            title: kind.title(),
            explanation: kind.explanation(),
            columns: r.columns.clone(),
            rows: r
                .rows
                .iter()
                .map(|row| {
                    row.iter()
                        .zip(&r.columns)
                        .map(|(v, c)| show(v, c))
                        .collect()
                })
                .collect(),
            chart_alt: format!("chart: {}", kind.title()),
            chart: chart.map(|svg| format!("data:image/svg+xml,{}", url_encode(&svg))),
        });
    }
    let field = |v: &Option<String>| non_empty(v).unwrap_or("").to_owned();
    let page = ReportsPage {
        nav: Some(Nav::of(&user)),
        from: field(&q.from),
        to: field(&q.to),
        runbook: field(&q.runbook),
        level: field(&q.level),
        agent: field(&q.agent),
        week: filter.bucket == Bucket::Week,
        query: q.query_string(),
        reports,
    };
    Ok(Html(page.render().map_err(AppError::from)?).into_response())
}

/// `/reports/NAME.csv` and `/reports/NAME.json`, with the page's filters.
pub(crate) async fn download(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(file): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, PageError> {
    require_lead(&user)?;
    let (name, ext) = file.rsplit_once('.').ok_or_else(|| {
        AppError::NotFound(format!("no report file {file:?} (NAME.csv or NAME.json)"))
    })?;
    let kind = kind_of(name)?;
    let report = state
        .store
        .report(kind, &q.filter()?)
        .await
        .map_err(AppError::from)?;
    match ext {
        "csv" => Ok(csv_response(&report)),
        "json" => Ok(json_response(&report)),
        _ => Err(
            AppError::NotFound(format!("no report file {file:?} (NAME.csv or NAME.json)")).into(),
        ),
    }
}

fn csv_response(report: &Report) -> Response {
    (
        [
            (CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.csv\"", report.kind.name()),
            ),
        ],
        report.to_csv(),
    )
        .into_response()
}

fn json_response(report: &Report) -> Response {
    (
        [(
            CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}.json\"", report.kind.name()),
        )],
        Json(report.to_json()),
    )
        .into_response()
}

/// `GET /api/reports`: the reports there are.
pub(crate) async fn api_list(ApiUser(user): ApiUser) -> Result<Json<serde_json::Value>, ApiError> {
    require_lead(&user)?;
    let list: Vec<_> = ReportKind::ALL
        .iter()
        .map(|k| {
            serde_json::json!({
                "name": k.name(), "title": k.title(), "explanation": k.explanation(),
                "href": format!("/api/reports/{}", k.name()),
            })
        })
        .collect();
    Ok(Json(serde_json::Value::Array(list)))
}

/// `GET /api/reports/NAME[?from&to&runbook&level&agent&bucket&format=csv]`.
pub(crate) async fn api_report(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Path(name): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    require_lead(&user)?;
    let kind = kind_of(&name)?;
    let report = state.store.report(kind, &q.filter()?).await?;
    match non_empty(&q.format) {
        None | Some("json") => Ok(Json(report.to_json()).into_response()),
        Some("csv") => Ok(csv_response(&report)),
        Some(other) => {
            Err(AppError::BadRequest(format!("unknown format {other:?} (json or csv)")).into())
        }
    }
}

/// Upper bounds of the time-to-resolve histogram, in seconds.
const RESOLVE_BUCKETS_S: [i64; 9] = [
    300,
    900,
    1800,
    3600,
    4 * 3600,
    8 * 3600,
    86400,
    3 * 86400,
    7 * 86400,
];

/// `/metrics`: the app's metrics, plus closed incidents' time to resolve (one aggregate query).
pub(crate) async fn metrics(State(state): State<AppState>) -> Result<Response, PageError> {
    let base = crate::pages::operations::metrics(State(state.clone())).await?;
    let (parts, body) = base.into_parts();
    let mut text = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let bounds: Vec<i64> = RESOLVE_BUCKETS_S.iter().map(|s| s * 1000).collect();
    let h = state
        .store
        .resolve_histogram(&bounds)
        .await
        .map_err(AppError::from)?;
    text.push_str(
        "# HELP dialtone_incident_resolve_seconds Time from opening to closing of closed incidents.\n\
         # TYPE dialtone_incident_resolve_seconds histogram\n",
    );
    for (bound, n) in &h.buckets {
        let _ = writeln!(
            text,
            "dialtone_incident_resolve_seconds_bucket{{le=\"{}\"}} {n}",
            bound / 1000
        );
    }
    let _ = writeln!(
        text,
        "dialtone_incident_resolve_seconds_bucket{{le=\"+Inf\"}} {}",
        h.count
    );
    let _ = writeln!(
        text,
        "dialtone_incident_resolve_seconds_sum {}",
        h.sum_ms as f64 / 1000.0
    );
    let _ = writeln!(text, "dialtone_incident_resolve_seconds_count {}", h.count);
    Ok(Response::from_parts(parts, axum::body::Body::from(text)))
}

/// The report with its ids in words for the page: steps, escalation kinds, outcomes, phases
/// (statuses and levels) and answer sources by their titles.
fn in_words(set: &runbook::RunbookSet, mut r: Report) -> Report {
    let col = |name: &str| r.columns.iter().position(|c| *c == name);
    let (step, by, name, outcome, phase, source) = (
        col("step"),
        col("by"),
        col("name"),
        col("outcome"),
        col("phase"),
        col("source"),
    );
    for row in &mut r.rows {
        let text = |row: &Vec<serde_json::Value>, i: Option<usize>| {
            i.and_then(|i| row.get(i))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let by_value = text(row, by);
        let step_words = text(row, step).map(|s| labels::step_title(set, &s));
        let name_words = text(row, name).map(|n| match by_value.as_deref() {
            Some("step") => labels::step_title(set, &n),
            Some("kind") if n == "(none)" => "No kind given".to_owned(),
            Some("kind") => labels::escalation_kind(set, Some(&n), ""),
            _ => n,
        });
        let outcome_words = text(row, outcome).map(|o| {
            if o.starts_with('(') {
                labels::status_str(o.trim_matches(['(', ')']))
            } else {
                labels::outcome_title(set, None, &o)
            }
        });
        let phase_words = text(row, phase).map(|p| {
            if p.len() == 2 && p.starts_with(['L', 'l']) {
                labels::level(&p)
            } else {
                labels::status_str(&p)
            }
        });
        let source_words = text(row, source).map(|s| labels::source(&s));
        let by_words = by_value.map(|b| match b.as_str() {
            "step" => "Step".to_owned(),
            "kind" => "Escalation kind".to_owned(),
            other => other.to_owned(),
        });
        let mut set_cell = |i: Option<usize>, words: Option<String>| {
            if let (Some(i), Some(w)) = (i, words)
                && let Some(cell) = row.get_mut(i)
            {
                *cell = serde_json::Value::String(w);
            }
        };
        set_cell(step, step_words);
        set_cell(name, name_words);
        set_cell(outcome, outcome_words);
        set_cell(phase, phase_words);
        set_cell(source, source_words);
        set_cell(by, by_words);
    }
    r
}

// ---------------------------------------------------------------- charts

/// A cell for the page: durations also in words, rates as percentages.
fn show(v: &serde_json::Value, column: &str) -> String {
    match v {
        serde_json::Value::Null => "–".to_owned(),
        _ if column.ends_with("_ms") => v.as_i64().map_or_else(
            || cell_text(v),
            |ms| format!("{} ({ms} ms)", incidents::duration_words(ms)),
        ),
        _ if column == "rate" || column == "share" => v
            .as_f64()
            .map_or_else(|| cell_text(v), |r| format!("{:.2}%", r * 100.0)),
        _ => cell_text(v),
    }
}

/// Text for SVG: the five XML specials escaped.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

const PALETTE: [&str; 8] = [
    "#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#718096", "#d69e2e", "#319795",
];

/// The chart of a report, or `None` when there is nothing to draw.
fn chart(r: &Report) -> Option<String> {
    let num = |row: &Vec<serde_json::Value>, col: &str| -> Option<f64> {
        let i = r.columns.iter().position(|c| *c == col)?;
        row.get(i)?.as_f64()
    };
    let text = |row: &Vec<serde_json::Value>, col: &str| -> String {
        r.columns
            .iter()
            .position(|c| *c == col)
            .and_then(|i| row.get(i))
            .map(cell_text)
            .unwrap_or_default()
    };
    let bars: Vec<(String, f64, String)> = match r.kind {
        ReportKind::TimeToResolve => {
            let row = r.rows.first()?;
            ["median_ms", "p90_ms"]
                .iter()
                .filter_map(|c| {
                    num(row, c).map(|v| {
                        (
                            c.trim_end_matches("_ms").to_owned(),
                            v,
                            incidents::duration_words(v as i64),
                        )
                    })
                })
                .collect()
        }
        ReportKind::TimeAtLevel => r
            .rows
            .iter()
            .flat_map(|row| {
                let phase = text(row, "phase");
                ["median_ms", "p90_ms"].into_iter().filter_map(move |c| {
                    num(row, c).map(|v| {
                        (
                            format!("{phase} {}", c.trim_end_matches("_ms")),
                            v,
                            incidents::duration_words(v as i64),
                        )
                    })
                })
            })
            .collect(),
        ReportKind::FirstLevel | ReportKind::Automation => {
            let (label_col, value_col) = if r.kind == ReportKind::FirstLevel {
                ("", "rate")
            } else {
                ("source", "share")
            };
            r.rows
                .iter()
                .filter_map(|row| {
                    let v = num(row, value_col)?;
                    let label = if label_col.is_empty() {
                        "closed at L1".to_owned()
                    } else {
                        text(row, label_col)
                    };
                    Some((label, v, format!("{:.1}%", v * 100.0)))
                })
                .collect()
        }
        ReportKind::Escalations => r
            .rows
            .iter()
            .filter_map(|row| {
                let v = num(row, "rate")?;
                Some((
                    format!("{} {}", text(row, "by"), text(row, "name")),
                    v,
                    format!("{:.1}%", v * 100.0),
                ))
            })
            .collect(),
        ReportKind::Overrides => r
            .rows
            .iter()
            .take(15)
            .filter_map(|row| {
                let v = num(row, "rate")?;
                Some((text(row, "step"), v, format!("{:.1}%", v * 100.0)))
            })
            .collect(),
        ReportKind::Outcomes => return stacked_columns(r),
    };
    if bars.is_empty() {
        return None;
    }
    Some(hbars(&bars))
}

/// Horizontal bars: (label, value, value as text), scaled to the largest value.
fn hbars(bars: &[(String, f64, String)]) -> String {
    let (label_w, bar_w, row_h) = (220.0, 420.0, 22.0);
    let height = row_h * bars.len() as f64 + 10.0;
    let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" \
         viewBox=\"0 0 {w} {height}\" font-family=\"sans-serif\" font-size=\"12\">",
        w = label_w + bar_w + 90.0
    );
    for (i, (label, value, shown)) in bars.iter().enumerate() {
        let y = 5.0 + row_h * i as f64;
        let len = if max > 0.0 { bar_w * value / max } else { 0.0 };
        let _ = write!(
            svg,
            "<text x=\"{tx}\" y=\"{ty}\" text-anchor=\"end\">{label}</text>\
             <rect x=\"{label_w}\" y=\"{y}\" width=\"{len:.1}\" height=\"{bh}\" fill=\"{color}\"/>\
             <text x=\"{vx:.1}\" y=\"{ty}\">{shown}</text>",
            tx = label_w - 6.0,
            ty = y + 14.0,
            label = xml(label),
            bh = row_h - 6.0,
            color = PALETTE[0],
            vx = label_w + len + 4.0,
            shown = xml(shown),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Outcomes over time: one column per bucket, stacked by outcome, with a legend.
fn stacked_columns(r: &Report) -> Option<String> {
    let mut buckets: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let mut outcomes: BTreeMap<String, i64> = BTreeMap::new();
    for row in &r.rows {
        let (Some(b), Some(o), Some(n)) = (
            row.first().map(cell_text),
            row.get(1).map(cell_text),
            row.get(2).and_then(serde_json::Value::as_i64),
        ) else {
            continue;
        };
        *buckets.entry(b).or_default().entry(o.clone()).or_default() += n;
        *outcomes.entry(o).or_default() += n;
    }
    if buckets.is_empty() {
        return None;
    }
    // The most frequent outcomes get their own colour; the rest share the last one.
    let mut order: Vec<(String, i64)> = outcomes.into_iter().collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let named: Vec<String> = order
        .iter()
        .take(PALETTE.len() - 1)
        .map(|o| o.0.clone())
        .collect();
    let colour = |o: &str| {
        named
            .iter()
            .position(|n| n == o)
            .map_or(PALETTE[PALETTE.len() - 1], |i| PALETTE[i])
    };
    let max = buckets
        .values()
        .map(|m| m.values().sum::<i64>())
        .max()
        .unwrap_or(1)
        .max(1);
    let (plot_h, left, legend_w): (f64, f64, f64) = (220.0, 50.0, 170.0);
    let col_w = (640.0 / buckets.len() as f64).clamp(2.0, 40.0);
    let plot_w = col_w * buckets.len() as f64;
    let width = left + plot_w + legend_w + 10.0;
    let legend_h = 16.0 * (named.len() as f64 + 1.0);
    let height = (plot_h + 40.0).max(legend_h + 10.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\" font-size=\"11\">\
         <text x=\"{tx}\" y=\"12\" text-anchor=\"end\">{max}</text>\
         <line x1=\"{left}\" y1=\"10\" x2=\"{left}\" y2=\"{bottom}\" stroke=\"#999\"/>\
         <line x1=\"{left}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\" stroke=\"#999\"/>",
        tx = left - 4.0,
        bottom = 10.0 + plot_h,
        right = left + plot_w,
    );
    let n_buckets = buckets.len();
    for (i, (bucket, counts)) in buckets.iter().enumerate() {
        let x = left + col_w * i as f64;
        let mut y = 10.0 + plot_h;
        for o in order.iter().map(|o| &o.0) {
            let Some(n) = counts.get(o) else { continue };
            let h = plot_h * *n as f64 / max as f64;
            y -= h;
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{c}\">\
                 <title>{t}</title></rect>",
                w = (col_w - 1.0).max(1.0),
                c = colour(o),
                t = xml(&format!("{bucket} {o}: {n}")),
            );
        }
        // First and last bucket labelled below the axis.
        if i == 0 || i + 1 == n_buckets {
            let _ = write!(
                svg,
                "<text x=\"{x:.1}\" y=\"{ly}\">{b}</text>",
                ly = plot_h + 26.0,
                b = xml(bucket)
            );
        }
    }
    let lx = left + plot_w + 12.0;
    for (i, o) in named.iter().enumerate() {
        let ly = 14.0 + 16.0 * i as f64;
        let _ = write!(
            svg,
            "<rect x=\"{lx:.1}\" y=\"{ry:.1}\" width=\"10\" height=\"10\" fill=\"{c}\"/>\
             <text x=\"{tx:.1}\" y=\"{ly:.1}\">{o}</text>",
            ry = ly - 9.0,
            c = PALETTE[i],
            tx = lx + 14.0,
            o = xml(o),
        );
    }
    if order.len() > named.len() {
        let ly = 14.0 + 16.0 * named.len() as f64;
        let _ = write!(
            svg,
            "<rect x=\"{lx:.1}\" y=\"{ry:.1}\" width=\"10\" height=\"10\" fill=\"{c}\"/>\
             <text x=\"{tx:.1}\" y=\"{ly:.1}\">other</text>",
            ry = ly - 9.0,
            c = PALETTE[PALETTE.len() - 1],
            tx = lx + 14.0,
        );
    }
    svg.push_str("</svg>");
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_text_is_escaped_and_urls_encoded() {
        assert_eq!(
            xml("<a href='x'>&</a>"),
            "&lt;a href=&apos;x&apos;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(url_encode("a b#<"), "a%20b%23%3C");
        let svg = hbars(&[("<script>".to_owned(), 1.0, "1".to_owned())]);
        assert!(!svg.contains("<script>") && svg.contains("&lt;script&gt;"));
        assert_eq!(incidents::duration_words(90_000), "1m 30s");
    }
}
