//! Messages parsed per second: a 200 OK with SDP from RFC 3261 §24.2, a REGISTER and a 401.
//! Criterion reports time per message; throughput is set to one element so it also prints msgs/s.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn load(name: &str) -> Vec<u8> {
    let path = format!("{}/test_data/messages/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    for name in [
        "rfc3261-24.2-f9-200.sip",
        "rfc3261-24.1-register.sip",
        "rfc3665-2.1-f2-401.sip",
    ] {
        let msg = load(name);
        g.bench_function(format!("parse/{name}"), |b| {
            b.iter(|| black_box(sip_message::parse(black_box(&msg))))
        });
        g.bench_function(format!("parse+callid+cseq/{name}"), |b| {
            b.iter(|| {
                let p = sip_message::parse(black_box(&msg));
                let m = p.message.expect("bench input parses");
                black_box((m.headers().call_id().map(str::len), m.headers().cseq().ok()))
            })
        });
    }
    let msg = load("rfc3261-24.2-f9-200.sip");
    g.bench_function("frame/rfc3261-24.2-f9-200.sip", |b| {
        b.iter(|| black_box(sip_message::frame(black_box(&msg))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
