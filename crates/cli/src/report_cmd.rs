//! `dialtone report NAME [--from --to --runbook --level --agent --bucket] [--json|--csv]`: the
//! support lead's reports, computed by the database (see `incidents::ReportKind`).

use chrono::{DateTime, Utc};
use clap::Args;
use incidents::{Bucket, Report, ReportFilter, ReportKind, cell_text};

use crate::exit::{self, coded};
use crate::util::{Ctx, print_json};

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// time-to-resolve, time-at-level, first-level, escalations, outcomes, automation,
    /// overrides, or all.
    pub name: String,
    /// Incidents opened at or after (YYYY-MM-DD, UTC, or RFC 3339).
    #[arg(long)]
    pub from: Option<String>,
    /// Incidents opened before (YYYY-MM-DD, UTC, or RFC 3339).
    #[arg(long)]
    pub to: Option<String>,
    /// Only this runbook's incidents.
    #[arg(long)]
    pub runbook: Option<String>,
    /// Only incidents at this level now (L1, L2, L3).
    #[arg(long)]
    pub level: Option<String>,
    /// Only incidents assigned to this agent or with a step they recorded.
    #[arg(long)]
    pub agent: Option<String>,
    /// Outcomes per day or week.
    #[arg(long, default_value = "day")]
    pub bucket: String,
    /// Print CSV (with --json: JSON wins).
    #[arg(long)]
    pub csv: bool,
}

/// A date (midnight UTC) or an RFC 3339 time.
pub fn parse_time(flag: &str, text: &str) -> anyhow::Result<DateTime<Utc>> {
    incidents::parse_when(text).ok_or_else(|| {
        coded(
            exit::INVALID,
            format!("--{flag} {text:?}: expected YYYY-MM-DD or an RFC 3339 time"),
        )
    })
}

pub async fn report(ctx: &Ctx, args: ReportArgs) -> anyhow::Result<u8> {
    let kinds: Vec<ReportKind> = if args.name.trim().eq_ignore_ascii_case("all") {
        ReportKind::ALL.to_vec()
    } else {
        vec![args.name.parse()?]
    };
    let filter = ReportFilter {
        from: args
            .from
            .as_deref()
            .map(|t| parse_time("from", t))
            .transpose()?,
        to: args
            .to
            .as_deref()
            .map(|t| parse_time("to", t))
            .transpose()?,
        runbook: args.runbook,
        level: args.level,
        agent: args.agent,
        bucket: args.bucket.parse::<Bucket>()?,
    };
    let store = ctx.store().await?;
    let mut reports = Vec::with_capacity(kinds.len());
    for kind in kinds {
        reports.push(store.report(kind, &filter).await?);
    }
    if ctx.json {
        let json: Vec<_> = reports.iter().map(Report::to_json).collect();
        match json.as_slice() {
            [one] => print_json(one)?,
            _ => print_json(&json)?,
        }
    } else if args.csv {
        for (i, r) in reports.iter().enumerate() {
            if reports.len() > 1 {
                // One CSV per report, each introduced by its name, blank line between.
                if i > 0 {
                    print!("\r\n");
                }
                print!("# {}\r\n", r.kind.name());
            }
            print!("{}", r.to_csv());
        }
    } else {
        for (i, r) in reports.iter().enumerate() {
            if i > 0 {
                println!();
            }
            print!("{}", text(r));
        }
    }
    Ok(exit::OK)
}

/// A report as an aligned table, durations also in words ("754000 (12m 34s)").
pub fn text(r: &Report) -> String {
    let mut out = format!("{}\n", r.kind.title());
    let cells: Vec<Vec<String>> = r
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .zip(&r.columns)
                .map(|(v, col)| match v.as_i64() {
                    Some(ms) if col.ends_with("_ms") => {
                        format!("{ms} ({})", incidents::duration_words(ms))
                    }
                    _ if v.is_null() => "-".to_owned(),
                    _ => cell_text(v),
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = r
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|row| row[i].chars().count())
                .chain([c.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |row: Vec<String>| -> String {
        let padded: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("  {}\n", padded.join("  ").trim_end())
    };
    out.push_str(&line(r.columns.iter().map(|c| (*c).to_owned()).collect()));
    if cells.is_empty() {
        out.push_str("  (no incidents)\n");
    }
    for row in cells {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times_read_as_people_write_them() {
        assert_eq!(incidents::duration_words(850), "850 ms");
        assert_eq!(incidents::duration_words(754_000), "12m 34s");
        assert_eq!(
            incidents::duration_words(3 * 3_600_000 + 5 * 60_000),
            "3h 05m"
        );
        assert_eq!(
            incidents::duration_words(2 * 86_400_000 + 4 * 3_600_000),
            "2d 04h"
        );
        assert_eq!(
            parse_time("from", "2026-03-01").unwrap().to_rfc3339(),
            "2026-03-01T00:00:00+00:00"
        );
        assert!(parse_time("from", "yesterday").is_err());
    }
}
