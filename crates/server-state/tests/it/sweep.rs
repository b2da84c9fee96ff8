//! The sweep (`all_accounts`) over a generated server: a lab started on a generated Kamailio
//! SQLite database (usrloc preloads the bindings), the same population in PostgreSQL read with the
//! lab's management interface, and as a file export. Every account's answer is checked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use server_state::generate::{
    POSTGRES_SCHEMA_DIR, Population, SQLITE_SCHEMA_DIR, create_kamailio_schema, fill_population,
    write_population_export,
};
use server_state::{AccountSummary, FileState, KamailioState, ServerState};

use crate::kamailio_db::{PgDb, config};

/// A lab started by lab/start.sh on an existing database (testlab always recreates it).
struct KeptDbLab {
    lab_dir: PathBuf,
    run_dir: PathBuf,
    rpc_url: String,
}

impl KeptDbLab {
    fn start(run_dir: &Path) -> KeptDbLab {
        let lab_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../lab")
            .canonicalize()
            .unwrap();
        let mut last = String::new();
        for _ in 0..5 {
            let base = random_port_block();
            let out = Command::new("bash")
                .arg(lab_dir.join("start.sh"))
                .arg(run_dir)
                .env("LAB_KEEP_DB", "1")
                .env("LAB_START_TIMEOUT_MS", "30000")
                .env("LAB_SIP_PORT", base.to_string())
                .env("LAB_TLS_PORT", (base + 1).to_string())
                .env("LAB_RPC_PORT", (base + 2).to_string())
                .env("LAB_ECHO_PORT", (base + 3).to_string())
                .env("LAB_GW_PORT", (base + 4).to_string())
                .env("LAB_GW2_PORT", (base + 5).to_string())
                .env("LAB_MEDIA_BASE", (base + 8).to_string())
                .output()
                .unwrap();
            if out.status.success() {
                return KeptDbLab {
                    lab_dir,
                    run_dir: run_dir.to_path_buf(),
                    rpc_url: format!("http://127.0.0.1:{}/RPC", base + 2),
                };
            }
            // Another test may have taken a port between the check and the bind: try elsewhere.
            last = String::from_utf8_lossy(&out.stderr).into_owned();
            let _ = Command::new("bash")
                .arg(lab_dir.join("stop.sh"))
                .arg(run_dir)
                .status();
        }
        panic!("lab/start.sh failed 5 times, last: {last}")
    }
}

/// A block of 16 ports below the ephemeral range (other tests' sockets come and go there).
fn random_port_block() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    (10_000 + (r % ((32_768 - 10_000) / 16)) * 16) as u16
}

impl Drop for KeptDbLab {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(self.lab_dir.join("stop.sh"))
            .arg(&self.run_dir)
            .status();
    }
}

fn verify(pop: &Population, all: &[AccountSummary], what: &str) {
    assert_eq!(all.len(), pop.accounts, "{what}");
    let mut owners: HashMap<&str, usize> = HashMap::new();
    for a in all {
        let i: usize = a.user[1..].parse().unwrap();
        assert_eq!(
            (a.registered, a.ever_registered),
            (pop.is_registered(i), pop.ever_registered(i)),
            "{what}: {a:?}"
        );
        assert_eq!(a.numbers[0].number, pop.primary(i), "{what}: {a:?}");
        for n in &a.numbers {
            *owners.entry(n.number.as_str()).or_default() += 1;
        }
    }
    let duplicated = owners.values().filter(|c| **c > 1).count();
    assert_eq!(
        duplicated,
        (0..pop.accounts - 1)
            .filter(|i| pop.has_duplicate(i + 1))
            .count(),
        "{what}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_of_a_generated_server_on_every_backend() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let mut pop = Population::new(3000, chrono::Utc::now().timestamp());
    pop.duplicate_every = 500;
    let db = run_dir.join("lab.sqlite");
    let url = format!("sqlite://{}", db.display());
    create_kamailio_schema(&url, Path::new(SQLITE_SCHEMA_DIR))
        .await
        .unwrap();
    fill_population(&url, &pop).await.unwrap();
    let lab = KeptDbLab::start(&run_dir);

    let sqlite = KamailioState::new(config(lab.rpc_url.clone(), db.display().to_string())).unwrap();
    // usrloc preloads in a child process after RPC already answers: wait (bounded) for it.
    let expected = (0..pop.accounts).filter(|i| pop.is_registered(*i)).count();
    let deadline = Instant::now() + Duration::from_secs(30);
    let all = loop {
        let all = sqlite.all_accounts().await.unwrap();
        if all.iter().filter(|a| a.registered).count() == expected || Instant::now() > deadline {
            break all;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    verify(&pop, &all, "sqlite");
    let dup_owner = pop.user(1);
    let owners: Vec<String> = sqlite
        .accounts_with_number(&pop.primary(0))
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.user)
        .collect();
    assert_eq!(owners, vec![pop.user(0), dup_owner]);

    let pg = PgDb::create().await;
    create_kamailio_schema(&pg.url, Path::new(POSTGRES_SCHEMA_DIR))
        .await
        .unwrap();
    fill_population(&pg.url, &pop).await.unwrap();
    let postgres = KamailioState::new(config(lab.rpc_url.clone(), pg.url.clone())).unwrap();
    verify(&pop, &postgres.all_accounts().await.unwrap(), "postgresql");

    let export = tmp.path().join("export");
    write_population_export(&export, &pop).unwrap();
    let files = FileState::open(&export).unwrap();
    verify(&pop, &files.all_accounts().await.unwrap(), "files");
}
