//! Probe benchmarks against a real lab on loopback, printed as figures and ratios:
//! OPTIONS round trip p50/p99 (in-process probe vs `sipsak` processes, with the cost of
//! spawning a process measured separately), and echo call set-up time.
//! Run: `cargo bench -p sip-probe --bench probe` (needs the lab's Debian packages and sipsak).

use sip_probe::{Category, Credentials, ProbeOptions, ProbeTarget, Transport};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(name: &str, mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let (p50, p99) = (pct(&v, 0.5), pct(&v, 0.99));
    println!(
        "{name:<44} n={:<4} p50 {p50:>8.3} ms  p99 {p99:>8.3} ms",
        v.len()
    );
    (p50, p99)
}

fn time_process(cmd: &mut Command) -> Option<f64> {
    let t = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    status.success().then(|| t.elapsed().as_secs_f64() * 1000.0)
}

fn main() {
    let n: usize = std::env::var("DIALTONE_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let lab = match testlab::Lab::start() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("probe bench needs the lab: {e}");
            std::process::exit(1);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let udp = ProbeTarget::direct("127.0.0.1", lab.sip_port(), Transport::Udp, lab.domain());
    let opts = ProbeOptions::default();

    // Warm up the server (first requests load the usrloc/dispatcher paths).
    for _ in 0..10 {
        let _ = rt.block_on(sip_probe::options(&udp, &opts));
    }
    let mut ours = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = rt.block_on(sip_probe::options(&udp, &opts));
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(r.verdict.category, Category::Ok, "{}", r.verdict.summary);
        ours.push(ms);
    }
    let mut tcp_ours = Vec::with_capacity(n);
    let tcp = ProbeTarget {
        transport: Transport::Tcp,
        ..udp.clone()
    };
    for _ in 0..n {
        let t = Instant::now();
        let r = rt.block_on(sip_probe::options(&tcp, &opts));
        assert_eq!(r.verdict.category, Category::Ok, "{}", r.verdict.summary);
        tcp_ours.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let uri = format!("sip:127.0.0.1:{}", lab.sip_port());
    let mut sipsak = Vec::with_capacity(n);
    let mut spawn = Vec::with_capacity(n);
    for _ in 0..n {
        if let Some(ms) = time_process(Command::new("sipsak").args(["-s", &uri])) {
            sipsak.push(ms);
        }
        if let Some(ms) = time_process(&mut Command::new("true")) {
            spawn.push(ms);
        }
    }
    println!("OPTIONS round trip on loopback ({n} probes each, new socket per probe)");
    let (o50, o99) = summary("dialtone sip_probe::options UDP (in-process)", ours);
    summary("dialtone sip_probe::options TCP (in-process)", tcp_ours);
    let (s50, s99) = summary("sipsak -s (one process per probe)", sipsak.clone());
    let (t50, _) = summary("spawning /bin/true (process cost baseline)", spawn);
    println!(
        "ratio sipsak/dialtone: p50 {:.1}x p99 {:.1}x; minus process spawn: p50 {:.1}x",
        s50 / o50,
        s99 / o99,
        (s50 - t50).max(0.0) / o50
    );
    if sipsak.len() < n {
        println!(
            "note: {} sipsak runs failed and were left out",
            n - sipsak.len()
        );
    }

    let alice = lab.account("alice").expect("seeded account");
    let creds = Credentials::new(&alice.user, &alice.password);
    let call_opts = ProbeOptions {
        media_window: Duration::from_millis(100),
        media_grace: Duration::from_millis(50),
        ..ProbeOptions::default()
    };
    let calls = (n / 5).max(10);
    let mut setup = Vec::new();
    let mut total = Vec::new();
    for _ in 0..calls {
        let t = Instant::now();
        let r = rt.block_on(sip_probe::echo(&udp, &creds, lab.echo_number(), &call_opts));
        assert_eq!(r.verdict.category, Category::Ok, "{}", r.verdict.summary);
        if let Some(ms) = r.setup_ms {
            setup.push(ms as f64);
        }
        total.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!("Echo call over UDP ({calls} calls, INVITE/407/INVITE/200, 100 ms of RTP, BYE)");
    summary("set-up: first INVITE to 200 OK", setup);
    summary("whole probe incl. media window and BYE", total);
}
