//! A stand-in for `dialtone serve` until the CLI has it: creates users, listens and prints the
//! address, so the browser tests and the benchmark can start a real server.
//!
//! Usage: serve [--listen ADDR] [--database URL | --data-dir DIR] [--user NAME:ROLE:PASSWORD]...
//! [--cheap-hashes] [--upload-limit BYTES]. Prints `listening on http://ADDR` once ready.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

fn fail(msg: &str) -> ! {
    eprintln!("serve: {msg}");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut database: Option<String> = None;
    let mut data_dir: Option<PathBuf> = None;
    let mut users: Vec<(String, String, String)> = Vec::new();
    let mut cheap = false;
    let mut upload_limit = 2 * 1024 * 1024;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| fail(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--listen" => {
                listen = value()
                    .parse()
                    .unwrap_or_else(|_| fail("--listen wants HOST:PORT"))
            }
            "--database" => database = Some(value()),
            "--data-dir" => data_dir = Some(PathBuf::from(value())),
            "--user" => {
                let v = value();
                let mut it = v.splitn(3, ':');
                match (it.next(), it.next(), it.next()) {
                    (Some(n), Some(r), Some(p)) => {
                        users.push((n.to_owned(), r.to_owned(), p.to_owned()))
                    }
                    _ => fail("--user wants NAME:ROLE:PASSWORD"),
                }
            }
            "--cheap-hashes" => cheap = true,
            "--upload-limit" => {
                upload_limit = value()
                    .parse()
                    .unwrap_or_else(|_| fail("--upload-limit wants a number of bytes"))
            }
            other => fail(&format!("unknown argument {other}")),
        }
    }
    let store = match (database, data_dir) {
        (Some(url), _) => incidents::Store::connect(&url).await,
        (None, Some(dir)) => incidents::Store::open_data_dir(&dir).await,
        (None, None) => incidents::Store::connect("sqlite::memory:").await,
    }
    .unwrap_or_else(|e| fail(&e.to_string()));
    for (name, role, password) in users {
        if store.user(&name).await.ok().flatten().is_some() {
            continue;
        }
        let hash = if cheap {
            web::hash_password_with_cost(&password, 256, 1)
        } else {
            web::hash_password(&password)
        }
        .unwrap_or_else(|e| fail(&e.to_string()));
        store
            .create_user(&name, &hash, &role)
            .await
            .unwrap_or_else(|e| fail(&e.to_string()));
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .unwrap_or_else(|e| fail(&format!("cannot listen on {listen}: {e}")));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| fail(&e.to_string()));
    let cfg = web::WebConfig {
        listen: addr,
        secure_cookies: false,
        session_ttl: Duration::from_secs(3600),
        max_upload_bytes: upload_limit,
        server_config_summary: serde_json::json!({ "server": "example (no diagnosis attached)" }),
        ..web::WebConfig::default()
    };
    let state = web::AppState::new(cfg, store, runbook::RunbookSet::builtin(), None);
    println!("listening on http://{addr}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Err(e) = web::serve_on(listener, state, shutdown).await {
        fail(&e.to_string());
    }
}
