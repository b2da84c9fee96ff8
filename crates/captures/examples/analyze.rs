//! Small driver for the benchmark and for eyeballing results: `analyze [--json] [--quiet]
//! [--user U] [--ladder CALL-ID] FILE...`; prints the summary table and MB/s per file.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut json, mut quiet, mut user, mut ladder, mut files) = (false, false, None, None, vec![]);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--json" => json = true,
            "--quiet" => quiet = true,
            "--user" => user = args.next(),
            "--ladder" => ladder = args.next(),
            _ => files.push(a),
        }
    }
    if files.is_empty() {
        eprintln!("usage: analyze [--json] [--quiet] [--user U] [--ladder CALL-ID] FILE...");
        return ExitCode::from(2);
    }
    for f in files {
        let opts = captures::AnalyzeOptions {
            user: user.clone(),
            progress: None,
            ..Default::default()
        };
        let t = Instant::now();
        let a = match captures::analyze_path(Path::new(&f), &opts) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("{f}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let secs = t.elapsed().as_secs_f64();
        if json {
            match serde_json::to_string_pretty(&a) {
                Ok(s) => println!("{s}"),
                Err(e) => eprintln!("{f}: {e}"),
            }
        } else if let Some(id) = &ladder {
            println!(
                "{}",
                captures::ladder_text(&a, id).unwrap_or_else(|| "no such Call-ID".into())
            );
        } else if !quiet {
            print!("{}", captures::summary_table(&a));
        }
        eprintln!(
            "{f}: {} bytes, {} packets, {} SIP messages, {} calls, {} registrations, peak {} open dialogs in {:.3} s = {:.1} MB/s",
            a.stats.bytes,
            a.stats.packets,
            a.stats.sip_messages,
            a.calls.len(),
            a.registrations.len(),
            a.stats.peak_open_dialogs,
            secs,
            a.stats.bytes as f64 / 1e6 / secs
        );
        // The process ends right after: freeing every summary one by one is wasted work.
        std::mem::forget(a);
    }
    ExitCode::SUCCESS
}
