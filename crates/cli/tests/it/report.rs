//! `dialtone report` and `dialtone incident search` through the binary, on SQLite and
//! PostgreSQL: the same figures in text, JSON and CSV; bad names and filters are exit 5.

use crate::support::*;

fn reports_and_search(cli: &Cli) {
    let open = |account: &str, description: &str| -> String {
        cli.ok(&[
            "--json",
            "incident",
            "open",
            "--account",
            account,
            "--description",
            description,
        ])
        .json()["incident"]["id"]
            .as_i64()
            .unwrap()
            .to_string()
    };
    let a = open("390655512345", "calls to Milano fail");
    let b = open("carol", "no audio");
    let why = "closed by hand for the report";
    cli.ok(&[
        "incident",
        "close",
        &a,
        "--outcome",
        "trunk_problem",
        "--reason",
        why,
    ]);
    cli.ok(&[
        "incident",
        "close",
        &b,
        "--outcome",
        "out_of_scope",
        "--reason",
        why,
    ]);
    let _c = open("dave", "busy tone");

    // JSON: one report object; all: an array of the seven.
    let flr = cli.ok(&["--json", "report", "first-level"]).json();
    assert_eq!(flr["report"], "first-level");
    assert_eq!(flr["rows"][0]["closed"], 2);
    assert_eq!(flr["rows"][0]["closed_at_l1"], 2);
    assert_eq!(flr["rows"][0]["rate"], 1.0);
    let all = cli.ok(&["--json", "report", "all"]).json();
    assert_eq!(all.as_array().map(Vec::len), Some(7));
    // CSV: the same figures.
    let csv = cli.ok(&["report", "first-level", "--csv"]).stdout;
    assert_eq!(
        csv,
        "closed,closed_at_l1,escalated_then_closed,rate\r\n2,2,0,1.0\r\n"
    );
    // Text: a table with durations in words.
    let text = cli.ok(&["report", "time-to-resolve"]).stdout;
    assert!(
        text.starts_with("Time to resolve (open to close)\n"),
        "{text}"
    );
    assert!(
        text.contains("closed") && text.contains("median_ms"),
        "{text}"
    );
    let outcomes = cli
        .ok(&["--json", "report", "outcomes", "--bucket", "week"])
        .json();
    let total: i64 = outcomes["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["incidents"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 3);
    // Filters: a period that ends before today (yesterday, from the test's clock) holds nothing.
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .date_naive()
        .to_string();
    let old = cli
        .ok(&["--json", "report", "first-level", "--to", &yesterday])
        .json();
    assert_eq!(old["rows"][0]["closed"], 0);
    assert_eq!(old["rows"][0]["rate"], serde_json::Value::Null);
    for (args, words) in [
        (&["report", "speed"][..], "unknown report"),
        (
            &["report", "outcomes", "--level", "L7"][..],
            "unknown level",
        ),
        (&["report", "outcomes", "--from", "soon"][..], "--from"),
        (
            &["report", "outcomes", "--bucket", "year"][..],
            "unknown bucket",
        ),
    ] {
        let r = cli.run(args);
        assert_eq!(r.code, 5, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(words), "{args:?}: {}", r.stderr);
    }

    // Search: by number, by a word, with a filter.
    let hits = cli
        .ok(&["--json", "incident", "search", "number:390655512345"])
        .json();
    assert_eq!(hits.as_array().map(Vec::len), Some(1));
    assert_eq!(hits[0]["id"].to_string(), a);
    let hits = cli
        .ok(&["--json", "incident", "search", "audio", "status:closed"])
        .json();
    assert_eq!(hits[0]["id"].to_string(), b);
    let text = cli.ok(&["incident", "search", "milano"]).stdout;
    assert!(
        text.contains("390655512345") && !text.contains("carol"),
        "{text}"
    );
    let r = cli.run(&["incident", "search", "colour:red"]);
    assert_eq!(r.code, 5, "{}", r.stderr);
}

#[test]
fn reports_and_search_on_sqlite() {
    reports_and_search(&Cli::sqlite());
}

#[test]
fn reports_and_search_on_postgres() {
    let db = PgDb::create();
    reports_and_search(&Cli::with_database(db.url.clone()));
}
