//! `dialtone collect` (a HEPv3 capture endpoint keeping a window of SIP events) and
//! `dialtone events ACCOUNT` (an account's timeline from that window).

use crate::exit::{self, coded};
use crate::util::Ctx;
use clap::Args;
use sip_events::{Collector, EventWindow, StoreConfig, TimelineEvent};
use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How often `events --follow` looks for new events.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

fn duration(s: &str) -> Result<Duration, String> {
    // Longer numbers would overflow a Duration.
    if s.trim().len() > 12 {
        return Err(format!("not a duration: {s:?} (use e.g. 30m, 1h, 7d)"));
    }
    diagnosis::config::parse_duration(s)
}

#[derive(Args, Debug)]
pub struct CollectArgs {
    /// Where to receive HEPv3: UDP and TCP on this address and port (9060 by HOMER convention;
    /// port 0 picks a free one).
    #[arg(long, env = "DIALTONE_HEP", default_value = "127.0.0.1:9060")]
    pub hep: SocketAddr,
    /// The events file (default: events.sqlite in the data directory).
    #[arg(long, env = "DIALTONE_EVENTS")]
    pub events: Option<PathBuf>,
    /// Most SIP messages kept; the oldest go first.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_events: u64,
    /// Events older than this are removed (e.g. 7d, 12h).
    #[arg(long, default_value = "7d", value_parser = duration)]
    pub max_age: Duration,
    /// Messages waiting to be written; past this, new ones are dropped (and counted).
    #[arg(long, default_value_t = 50_000)]
    pub queue: usize,
    /// Benchmark sender: send this many HEP-encoded SIP messages to --hep over UDP and exit.
    #[arg(long, hide = true)]
    pub bench_send: Option<u64>,
    /// Benchmark sender: messages per second (sent in bursts of 50).
    #[arg(long, hide = true, default_value_t = 100_000)]
    pub bench_rate: u64,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// The account (user part), as in REGISTER and call From/To/Request-URI.
    #[arg(required_unless_present = "stats")]
    pub account: Option<String>,
    /// How far back to look (e.g. 30m, 1h, 2d).
    #[arg(long, default_value = "1h", value_parser = duration)]
    pub since: Duration,
    /// Most events shown.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Keep watching and print new events and new results as they come (Ctrl-C stops).
    #[arg(long)]
    pub follow: bool,
    /// Show what the window holds instead (counts, oldest and newest event, last message).
    #[arg(long, conflicts_with = "follow")]
    pub stats: bool,
    /// The events file (default: events.sqlite in the data directory).
    #[arg(long, env = "DIALTONE_EVENTS")]
    pub events: Option<PathBuf>,
}

/// The events file: the flag, else `events.sqlite` in the data directory.
pub fn events_path(ctx: &Ctx, flag: Option<PathBuf>) -> PathBuf {
    flag.unwrap_or_else(|| ctx.default_data_dir().join(sip_events::DEFAULT_FILE))
}

fn events_error(e: sip_events::Error) -> anyhow::Error {
    let code = match &e {
        sip_events::Error::NoWindow(_) => exit::NOT_FOUND,
        sip_events::Error::Bind { .. } => exit::CONFIG,
        _ => exit::STORAGE,
    };
    coded(code, e.to_string())
}

/// Binds the collector on `addr` (UDP and TCP) and prints the line scripts read.
pub async fn start_collector(addr: SocketAddr, cfg: StoreConfig) -> anyhow::Result<Collector> {
    let path = cfg.path.clone();
    let c = Collector::bind_same_port(addr, cfg)
        .await
        .map_err(events_error)?;
    let show = |a: Option<SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
    // Tests and scripts read this line to find the port.
    println!(
        "dialtone collecting HEP on udp {} and tcp {} into {}",
        show(c.udp_addr()),
        show(c.tcp_addr()),
        path.display()
    );
    let _ = std::io::stdout().flush();
    Ok(c)
}

pub async fn collect(ctx: &Ctx, args: CollectArgs) -> anyhow::Result<u8> {
    if let Some(n) = args.bench_send {
        let (addr, rate) = (args.hep, args.bench_rate);
        return tokio::task::spawn_blocking(move || bench_send(addr, n, rate)).await?;
    }
    let mut cfg = StoreConfig::new(events_path(ctx, args.events));
    cfg.max_events = args.max_events.max(1);
    cfg.max_age = args.max_age;
    cfg.queue_capacity = args.queue.max(1);
    let c = start_collector(args.hep, cfg).await?;
    let counts = c
        .run(crate::serve_cmd::shutdown())
        .await
        .map_err(events_error)?;
    if ctx.json {
        crate::util::print_json(&counts)?;
    } else {
        println!(
            "stopped: {} packets received, {} messages stored, {} malformed, {} ignored, {} dropped (queue full)",
            counts.received, counts.stored, counts.malformed, counts.ignored, counts.dropped
        );
    }
    Ok(exit::OK)
}

fn when(e: &TimelineEvent) -> String {
    e.at().format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

fn json_line(e: &TimelineEvent, account: &str) -> anyhow::Result<String> {
    let mut v = serde_json::to_value(e)?;
    if let Some(o) = v.as_object_mut() {
        o.insert("text".into(), e.describe(account).into());
    }
    Ok(serde_json::to_string(&v)?)
}

pub async fn events(ctx: &Ctx, args: EventsArgs) -> anyhow::Result<u8> {
    let path = events_path(ctx, args.events);
    let w = EventWindow::open(&path).await.map_err(events_error)?;
    if args.stats {
        let st = w.stats().await.map_err(events_error)?;
        if ctx.json {
            let size = file_size(&path);
            let mut v = serde_json::to_value(&st)?;
            if let Some(o) = v.as_object_mut() {
                o.insert("file".into(), path.display().to_string().into());
                o.insert("file_bytes".into(), size.into());
            }
            crate::util::print_json(&v)?;
        } else {
            let t = |t: Option<chrono::DateTime<chrono::Utc>>| {
                t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_else(|| "never".into())
            };
            println!("{}", path.display());
            println!(
                "{} messages, {} registration attempts, {} calls",
                st.events, st.registration_attempts, st.calls
            );
            println!(
                "oldest {}, newest {}, last received {}",
                t(st.oldest_event),
                t(st.newest_event),
                t(st.last_received)
            );
        }
        return Ok(exit::OK);
    }
    let account = args.account.unwrap_or_default();
    let limit = args.limit.clamp(1, sip_events::store::MAX_READ_ROWS);
    let since = chrono::Utc::now()
        - chrono::Duration::from_std(args.since).unwrap_or(chrono::Duration::days(36_500));
    let list = w
        .timeline(&account, since, limit)
        .await
        .map_err(events_error)?;
    let mut out = std::io::stdout().lock();
    let mut shown: HashMap<String, String> = HashMap::new();
    for e in list.iter().rev() {
        print_event(&mut out, e, &account, ctx.json)?;
        shown.insert(e.key(), e.describe(&account));
    }
    if list.is_empty() && !ctx.json && !args.follow {
        let st = w.stats().await.map_err(events_error)?;
        let last = st
            .last_received
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| "never".into());
        writeln!(
            out,
            "no events for {account} since {} (the window holds {} messages; last one received {last})",
            since.format("%Y-%m-%d %H:%M:%S UTC"),
            st.events
        )?;
    }
    drop(out);
    if !args.follow {
        return Ok(exit::OK);
    }
    let stop = crate::serve_cmd::shutdown();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(exit::OK),
            () = tokio::time::sleep(FOLLOW_EVERY) => {}
        }
        let list = w
            .timeline(&account, since, limit)
            .await
            .map_err(events_error)?;
        let mut out = std::io::stdout().lock();
        // New events, and events whose result arrived since, oldest first.
        for e in list.iter().rev() {
            let text = e.describe(&account);
            if shown.get(&e.key()) != Some(&text) {
                print_event(&mut out, e, &account, ctx.json)?;
                shown.insert(e.key(), text);
            }
        }
        // Bounded memory: forget events that left the listing.
        if shown.len() > 4 * limit {
            let keep: std::collections::HashSet<String> = list.iter().map(|e| e.key()).collect();
            shown.retain(|k, _| keep.contains(k));
        }
    }
}

fn print_event(
    out: &mut impl std::io::Write,
    e: &TimelineEvent,
    account: &str,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        writeln!(out, "{}", json_line(e, account)?)?;
    } else {
        writeln!(out, "{}  {}", when(e), e.describe(account))?;
    }
    out.flush()?;
    Ok(())
}

fn file_size(path: &std::path::Path) -> u64 {
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    [path.to_path_buf(), wal]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// The benchmark's sender: a realistic mix (half registrations: REGISTER, 401, REGISTER, 200;
/// half calls: INVITE, 100, 180, 200, ACK, BYE, 200) from 10,000 accounts, paced at `rate`
/// messages per second in bursts of 50.
fn bench_send(to: SocketAddr, n: u64, rate: u64) -> anyhow::Result<u8> {
    use sip_events::synth::{self, RegOutcome};
    let sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let server: SocketAddr = "127.0.0.1:5060".parse()?;
    let rate = rate.max(1);
    let start = std::time::Instant::now();
    let mut sent: u64 = 0;
    let mut flow: u64 = 0;
    let mut errors: u64 = 0;
    while sent < n {
        let user = format!("u{}", flow % 10_000);
        let client = SocketAddr::from(([127, 0, 0, 1], 20_000 + (flow % 10_000) as u16));
        let now = chrono::Utc::now().timestamp_micros();
        let call_id = format!("bench-{flow}-{}", start.elapsed().as_nanos());
        let msgs = if flow.is_multiple_of(2) {
            synth::registration(
                &user,
                "bench.test",
                client,
                server,
                &call_id,
                now,
                RegOutcome::Registered,
            )
        } else {
            let status = if flow % 5 == 1 { 503 } else { 200 };
            let dialled = format!("9555{:04}", flow % 10_000);
            synth::call(
                &user,
                &dialled,
                "bench.test",
                client,
                server,
                &call_id,
                now,
                status,
            )
        };
        for p in synth::wrap(msgs) {
            if sent >= n {
                break;
            }
            if sock.send_to(&p, to).is_err() {
                errors += 1;
            }
            sent += 1;
            if sent.is_multiple_of(50) {
                let due = Duration::from_secs_f64(sent as f64 / rate as f64);
                let el = start.elapsed();
                if due > el {
                    std::thread::sleep(due - el);
                }
            }
        }
        flow += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "sent {sent} messages in {secs:.2} s ({:.0} msg/s), {errors} send errors",
        sent as f64 / secs
    );
    Ok(exit::OK)
}
