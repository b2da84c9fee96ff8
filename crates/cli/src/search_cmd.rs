//! `dialtone incident search QUERY...`: the store's full-text search (words in accounts,
//! reporters, descriptions and step notes, plus `key:value` filters), newest first.

use clap::Args;
use incidents::{SearchQuery, Store};

use crate::exit;
use crate::util::{Ctx, print_json};

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Words and filters, e.g. `milano status:open from:2026-01-01` or `number:390655512345`.
    #[arg(required = true, num_args = 1..)]
    pub query: Vec<String>,
}

pub async fn search(ctx: &Ctx, store: &Store, args: SearchArgs) -> anyhow::Result<u8> {
    let query = SearchQuery::parse(&args.query.join(" "))?;
    let found = store.search(&query).await?;
    if ctx.json {
        print_json(&found)?;
        return Ok(exit::OK);
    }
    if found.is_empty() {
        println!("no incident matches");
        return Ok(exit::OK);
    }
    println!(
        "{:>6}  {:<20} {:<3} {:<12} {:<16} {:<16} DESCRIPTION",
        "ID", "ACCOUNT", "LVL", "STATUS", "OUTCOME", "OPENED"
    );
    for i in &found {
        let description: String = i.description.chars().take(60).collect();
        println!(
            "{:>6}  {:<20} {:<3} {:<12} {:<16} {:<16} {}",
            i.id,
            i.account,
            i.level,
            i.status.as_str(),
            i.outcome.as_deref().unwrap_or("-"),
            i.created_at.format("%Y-%m-%d %H:%M"),
            description.replace(['\n', '\r'], " ")
        );
    }
    if found.len() as i64 >= incidents::SEARCH_LIMIT {
        println!(
            "(the newest {}; narrow the search)",
            incidents::SEARCH_LIMIT
        );
    }
    Ok(exit::OK)
}
