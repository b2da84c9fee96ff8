//! `dialtone audit verify` (the audit log's hash chain) and `dialtone backup FILE`.

use std::path::PathBuf;

use clap::Subcommand;

use crate::exit::{self, coded};
use crate::util::{Ctx, print_json};

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Check the audit log's hash chain; names the first row that was changed or follows a
    /// removed one (exit 10 then).
    Verify,
}

pub async fn audit(ctx: &Ctx, cmd: AuditCmd) -> anyhow::Result<u8> {
    let store = ctx.store().await?;
    match cmd {
        AuditCmd::Verify => {
            let v = store.verify_audit().await?;
            if ctx.json {
                print_json(&v)?;
            }
            match &v.first_broken {
                None => {
                    if !ctx.json {
                        println!("audit chain intact: {} rows checked", v.rows);
                    }
                    Ok(exit::OK)
                }
                Some(b) => {
                    if !ctx.json {
                        println!("audit chain broken at row {}: {}", b.id, b.reason);
                    }
                    Ok(exit::FINDING)
                }
            }
        }
    }
}

pub async fn backup(ctx: &Ctx, file: PathBuf) -> anyhow::Result<u8> {
    let store = ctx.store().await?;
    store.backup_to(&file).await?;
    let size = std::fs::metadata(&file)
        .map(|m| m.len())
        .map_err(|e| coded(exit::INTERNAL, format!("{}: {e}", file.display())))?;
    if ctx.json {
        print_json(&serde_json::json!({ "file": file, "bytes": size }))?;
    } else {
        println!("backed up to {} ({size} bytes)", file.display());
    }
    Ok(exit::OK)
}
