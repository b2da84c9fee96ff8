//! In-process cost of the collector's two stages on this machine: decoding + extraction per
//! message, and committing to the window per message (no sockets). `bench/hep.sh` measures the
//! real binary end to end. Usage: cargo run --release -p sip-events --example throughput [N]
use sip_events::events::record_from_hep;
use sip_events::synth::{self, RegOutcome};
use sip_events::{EventStore, StoreConfig, hep};
use std::net::SocketAddr;
use std::time::Instant;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let server: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let now = chrono::Utc::now().timestamp_micros();
    let mut packets = Vec::new();
    let mut flow = 0u64;
    while packets.len() < n {
        let client = SocketAddr::from(([127, 0, 0, 1], 20_000 + (flow % 10_000) as u16));
        let user = format!("u{}", flow % 10_000);
        let id = format!("tp-{flow}");
        let msgs = if flow.is_multiple_of(2) {
            synth::registration(
                &user,
                "b.test",
                client,
                server,
                &id,
                now,
                RegOutcome::Registered,
            )
        } else {
            synth::call(&user, "95551234", "b.test", client, server, &id, now, 200)
        };
        packets.extend(synth::wrap(msgs));
        flow += 1;
    }
    packets.truncate(n);
    let t = Instant::now();
    let records: Vec<_> = packets
        .iter()
        .filter_map(|p| record_from_hep(&hep::decode(p).ok()?, now).ok())
        .collect();
    let decode = t.elapsed().as_secs_f64();
    println!(
        "decode + extract: {n} packets in {decode:.3} s = {:.0} msg/s ({:.2} us each)",
        n as f64 / decode,
        decode * 1e6 / n as f64
    );
    let dir = tempfile::tempdir().unwrap();
    let store = EventStore::open(StoreConfig::new(dir.path().join("e.sqlite")))
        .await
        .unwrap();
    let t = Instant::now();
    for chunk in records.chunks(5_000) {
        store.write_batch(chunk).await.unwrap();
    }
    let write = t.elapsed().as_secs_f64();
    println!(
        "commit: {} records in {write:.3} s = {:.0} rows/s ({:.2} us each)",
        records.len(),
        records.len() as f64 / write,
        write * 1e6 / records.len() as f64
    );
}
