//! Benchmark of `all_accounts` (the sweep) over a generated server: a Kamailio lab started on a
//! generated 100,000-account SQLite database (usrloc loads the registrations into memory), and the
//! same population as a file export. Prints the figures; exits non-zero if an answer is wrong.
//!
//! Run: `cargo run --release -p server-state --example sweep_bench [ACCOUNTS] [ROUNDS]`
//! (needs the lab prerequisites: kamailio, kamailio-sqlite-modules, sip-tester, sqlite3).

use std::collections::BTreeMap;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use server_state::generate::{
    Population, SQLITE_SCHEMA_DIR, create_kamailio_schema, fill_population, write_population_export,
};
use server_state::{AccountSummary, FileState, KamailioConfig, KamailioState, ServerState};

/// A block of 16 ports below the ephemeral range where nothing listens now.
fn free_port_block() -> Option<u16> {
    use std::hash::{BuildHasher, Hasher};
    for _ in 0..50 {
        let r = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let base = (10_000 + (r % ((32_768 - 10_000) / 16)) * 16) as u16;
        let free = (base..base + 16).all(|p| {
            TcpListener::bind(("127.0.0.1", p)).is_ok() && UdpSocket::bind(("127.0.0.1", p)).is_ok()
        });
        if free {
            return Some(base);
        }
    }
    None
}

struct RunningLab {
    lab_dir: PathBuf,
    run_dir: PathBuf,
}

impl Drop for RunningLab {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(self.lab_dir.join("stop.sh"))
            .arg(&self.run_dir)
            .status();
    }
}

fn start_lab(
    lab_dir: &Path,
    run_dir: &Path,
) -> Result<(RunningLab, BTreeMap<String, String>), String> {
    let base = free_port_block().ok_or("no free block of ports")?;
    let ports = [
        ("LAB_SIP_PORT", base),
        ("LAB_TLS_PORT", base + 1),
        ("LAB_RPC_PORT", base + 2),
        ("LAB_ECHO_PORT", base + 3),
        ("LAB_GW_PORT", base + 4),
        ("LAB_GW2_PORT", base + 5),
        ("LAB_MEDIA_BASE", base + 8),
    ];
    let mut cmd = Command::new("bash");
    cmd.arg(lab_dir.join("start.sh")).arg(run_dir);
    for (k, v) in ports {
        cmd.env(k, v.to_string());
    }
    // Keep the generated database; usrloc needs time to load many bindings.
    cmd.env("LAB_KEEP_DB", "1")
        .env("LAB_START_TIMEOUT_MS", "60000");
    let out = cmd.output().map_err(|e| format!("lab/start.sh: {e}"))?;
    let lab = RunningLab {
        lab_dir: lab_dir.to_path_buf(),
        run_dir: run_dir.to_path_buf(),
    };
    if !out.status.success() {
        return Err(format!(
            "lab/start.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let env_text = std::fs::read_to_string(run_dir.join("lab.env")).map_err(|e| e.to_string())?;
    let env = env_text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Ok((lab, env))
}

fn check(pop: &Population, all: &[AccountSummary], what: &str) -> Result<(), String> {
    if all.len() != pop.accounts {
        return Err(format!(
            "{what}: {} accounts, expected {}",
            all.len(),
            pop.accounts
        ));
    }
    for a in all {
        let i: usize = a.user[1..]
            .parse()
            .map_err(|_| format!("{what}: odd user {}", a.user))?;
        if a.registered != pop.is_registered(i) || a.ever_registered != pop.ever_registered(i) {
            return Err(format!("{what}: wrong state for {}: {a:?}", a.user));
        }
    }
    Ok(())
}

async fn time_rounds(
    state: &dyn ServerState,
    rounds: usize,
    pop: &Population,
    what: &str,
) -> Result<Vec<Duration>, String> {
    let mut times = Vec::new();
    for _ in 0..rounds {
        let t0 = Instant::now();
        let all = state
            .all_accounts()
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        times.push(t0.elapsed());
        check(pop, &all, what)?;
    }
    times.sort();
    Ok(times)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

async fn run(accounts: usize, rounds: usize) -> Result<(), String> {
    let lab_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../lab")
        .canonicalize()
        .map_err(|e| format!("lab directory: {e}"))?;
    let keep = std::env::var_os("SWEEP_KEEP").is_some();
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (_tmp, root) = if keep {
        (None, tmp.keep())
    } else {
        let root = tmp.path().to_path_buf();
        (Some(tmp), root)
    };
    let run_dir = root.join("run");
    std::fs::create_dir_all(&run_dir).map_err(|e| e.to_string())?;
    let now = chrono::Utc::now().timestamp();
    // The lab runs Kamailio with 8 MB of private memory (`-M 8`), and usrloc's preload reads
    // the whole `location` table in one db_sqlite result: 10,000 rows do not fit (the child
    // exits), 3,334 do. So every 30th account is registered (3,334 of 100,000).
    let mut pop = Population::new(accounts, now);
    pop.registered_every = 30;

    let t0 = Instant::now();
    let db = run_dir.join("lab.sqlite");
    let url = format!("sqlite://{}", db.display());
    create_kamailio_schema(&url, Path::new(SQLITE_SCHEMA_DIR))
        .await
        .map_err(|e| e.to_string())?;
    fill_population(&url, &pop)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "generated {accounts} accounts into SQLite in {}",
        ms(t0.elapsed())
    );

    let t0 = Instant::now();
    let (lab, env) = start_lab(&lab_dir, &run_dir)?;
    if keep {
        // Debugging: leave the lab and its run directory (stop it with lab/stop.sh RUN_DIR).
        eprintln!("keeping the lab in {}", run_dir.display());
        std::mem::forget(lab);
    }
    println!("lab up with the generated database in {}", ms(t0.elapsed()));
    let state = KamailioState::new(KamailioConfig {
        rpc_url: env.get("LAB_RPC_URL").cloned().unwrap_or_default(),
        db_url: db.display().to_string(),
        domain: pop.domain.clone(),
        trunk_prefixes: BTreeMap::new(),
        echo_numbers: Vec::new(),
        timeout: Duration::from_secs(20),
        ..KamailioConfig::new("", "")
    })
    .map_err(|e| e.to_string())?;
    // usrloc preloads the location table in a child process after Kamailio already answers
    // RPC: wait (bounded) until every binding is in memory.
    let expected = (0..accounts).filter(|i| pop.is_registered(*i)).count();
    let t0 = Instant::now();
    loop {
        let all = state.all_accounts().await.map_err(|e| e.to_string())?;
        if all.iter().filter(|a| a.registered).count() == expected {
            break;
        }
        if t0.elapsed() > Duration::from_secs(120) {
            return Err("usrloc did not load every binding within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "usrloc had loaded {expected} bindings {} after the lab answered",
        ms(t0.elapsed())
    );
    let k = time_rounds(&state, rounds, &pop, "kamailio").await?;
    println!(
        "kamailio all_accounts ({accounts} accounts, {} registered in usrloc memory): min {}, median {}, max {} over {rounds} rounds",
        (0..accounts).filter(|i| pop.is_registered(*i)).count(),
        ms(k[0]),
        ms(k[k.len() / 2]),
        ms(k[k.len() - 1])
    );

    // The same population in PostgreSQL (when DIALTONE_TEST_PG_URL names a server), read with
    // the lab's management interface for the live registrations.
    if let Ok(admin) = std::env::var("DIALTONE_TEST_PG_URL") {
        let name = format!("dialtone_sweep_{}", std::process::id());
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(&admin)
            .to_string();
        let pg_url = format!("{base}/{name}");
        let admin_exec = |sql: String| {
            let admin = admin.clone();
            async move {
                use sqlx::Connection;
                let mut c = sqlx::PgConnection::connect(&admin)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut c)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<(), String>(())
            }
        };
        admin_exec(format!("CREATE DATABASE {name}")).await?;
        let result = async {
            let t0 = Instant::now();
            create_kamailio_schema(
                &pg_url,
                Path::new(server_state::generate::POSTGRES_SCHEMA_DIR),
            )
            .await
            .map_err(|e| e.to_string())?;
            fill_population(&pg_url, &pop)
                .await
                .map_err(|e| e.to_string())?;
            println!(
                "generated {accounts} accounts into PostgreSQL in {}",
                ms(t0.elapsed())
            );
            let pg_state = KamailioState::new(KamailioConfig {
                rpc_url: env.get("LAB_RPC_URL").cloned().unwrap_or_default(),
                db_url: pg_url.clone(),
                domain: pop.domain.clone(),
                trunk_prefixes: BTreeMap::new(),
                echo_numbers: Vec::new(),
                timeout: Duration::from_secs(20),
                ..KamailioConfig::new("", "")
            })
            .map_err(|e| e.to_string())?;
            let p = time_rounds(&pg_state, rounds, &pop, "postgresql").await?;
            println!(
                "postgresql all_accounts: min {}, median {}, max {}",
                ms(p[0]),
                ms(p[p.len() / 2]),
                ms(p[p.len() - 1])
            );
            Ok::<(), String>(())
        }
        .await;
        admin_exec(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await?;
        result?;
    }

    let t0 = Instant::now();
    let dir = root.join("export");
    write_population_export(&dir, &pop).map_err(|e| e.to_string())?;
    let written = t0.elapsed();
    let t0 = Instant::now();
    let files = FileState::open(&dir).map_err(|e| e.to_string())?;
    let open = t0.elapsed();
    let f = time_rounds(&files, rounds, &pop, "files").await?;
    println!(
        "file export: written in {}, FileState::open {}, all_accounts min {}, median {}",
        ms(written),
        ms(open),
        ms(f[0]),
        ms(f[f.len() / 2])
    );
    let target = Duration::from_secs(2);
    if k[k.len() / 2] > target || open + f[f.len() / 2] > target {
        return Err(format!("over the {} target", ms(target)));
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let accounts = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let rounds = args.next().and_then(|a| a.parse().ok()).unwrap_or(5).max(1);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sweep_bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(accounts, rounds)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sweep_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
