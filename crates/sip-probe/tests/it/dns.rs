//! RFC 3263 resolution through a scripted DNS server on loopback: NAPTR -> SRV -> A, each step
//! recorded, ending at the lab's real Kamailio; and SRV without NAPTR (§4.2).

use crate::helpers::*;
use hickory_resolver::proto::op::{Message, OpCode};
use hickory_resolver::proto::rr::rdata::{A, NAPTR, SRV};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use sip_probe::{Category, ProbeOptions, ProbeTarget, Transport};
use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

/// Answers from a fixed zone until no query comes for a while; returns the queries seen.
fn dns_server(
    zone: Vec<(String, RecordType, RData)>,
) -> (std::net::SocketAddr, std::thread::JoinHandle<Vec<String>>) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let addr = sock.local_addr().expect("addr");
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut r = Message::response(q.metadata.id, OpCode::Query);
            r.metadata.recursion_desired = q.metadata.recursion_desired;
            r.metadata.recursion_available = true;
            r.metadata.authoritative = true;
            for query in &q.queries {
                let name = query.name().to_ascii().to_ascii_lowercase();
                seen.push(format!("{} {name}", query.query_type()));
                for (zn, zt, data) in &zone {
                    if *zt == query.query_type() && zn.eq_ignore_ascii_case(&name) {
                        r.add_answer(Record::from_rdata(query.name().clone(), 60, data.clone()));
                    }
                }
                r.add_query(query.clone());
            }
            if let Ok(bytes) = r.to_vec() {
                let _ = sock.send_to(&bytes, from);
            }
        }
        seen
    });
    (addr, handle)
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("name")
}

#[test]
fn naptr_srv_a_chain_reaches_the_lab() {
    let lab = lab();
    let rt = rt();
    let port = lab.sip_port();
    let naptr = |service: &str, replacement: &str| {
        RData::NAPTR(NAPTR::new(
            10,
            10,
            b"s".to_vec().into_boxed_slice(),
            service.as_bytes().to_vec().into_boxed_slice(),
            Vec::new().into_boxed_slice(),
            name(replacement),
        ))
    };
    let zone = vec![
        (
            "voip.test.".to_owned(),
            RecordType::NAPTR,
            naptr("SIP+D2T", "_sip._tcp.voip.test."),
        ),
        (
            "voip.test.".to_owned(),
            RecordType::NAPTR,
            naptr("SIP+D2U", "_sip._udp.voip.test."),
        ),
        (
            "_sip._udp.voip.test.".to_owned(),
            RecordType::SRV,
            RData::SRV(SRV::new(10, 5, port, name("sip1.voip.test."))),
        ),
        (
            "_sip._tcp.voip.test.".to_owned(),
            RecordType::SRV,
            RData::SRV(SRV::new(10, 5, port, name("sip1.voip.test."))),
        ),
        (
            "sip1.voip.test.".to_owned(),
            RecordType::A,
            RData::A(A(Ipv4Addr::LOCALHOST)),
        ),
    ];
    let (dns, server) = dns_server(zone);
    let o = ProbeOptions {
        dns_server: Some(dns),
        ..opts()
    };
    for transport in [Transport::Udp, Transport::Tcp] {
        let t = ProbeTarget {
            host: "voip.test".into(),
            port: None,
            transport,
            domain: lab.domain().to_owned(),
            tls_trust: vec![],
            insecure_continue: false,
        };
        let r = rt.block_on(sip_probe::options(&t, &o));
        check(&r, Category::Ok, &[]);
        let kinds: Vec<&str> = r.resolution.iter().map(|s| s.kind.as_str()).collect();
        assert_eq!(kinds, ["naptr", "srv", "a/aaaa"], "{:?}", r.resolution);
        assert_eq!(r.resolution[0].answers.len(), 2);
        let srv = if transport == Transport::Udp {
            "_sip._udp.voip.test."
        } else {
            "_sip._tcp.voip.test."
        };
        assert_eq!(r.resolution[1].query, srv);
        assert_eq!(
            r.resolution[1].answers,
            [format!("10 5 {port} sip1.voip.test.")]
        );
        assert_eq!(r.resolution[1].ttl, Some(60));
        assert_eq!(r.resolution[2].answers, ["127.0.0.1"]);
        assert!(sip_probe::ladder(&r).contains("dns srv"));
    }
    // Without NAPTR the SRV name is derived from the transport (§4.2); an explicit port skips both.
    let t = ProbeTarget {
        host: "sip1.voip.test".into(),
        port: Some(port),
        transport: Transport::Udp,
        domain: lab.domain().to_owned(),
        tls_trust: vec![],
        insecure_continue: false,
    };
    let r = rt.block_on(sip_probe::options(&t, &o));
    check(&r, Category::Ok, &[]);
    let kinds: Vec<&str> = r.resolution.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds, ["a/aaaa"]);
    let seen = server.join().expect("dns thread");
    assert!(seen.iter().any(|q| q == "NAPTR voip.test."), "{seen:?}");
    assert!(
        !seen.iter().any(|q| q.starts_with("NAPTR sip1")),
        "explicit port must skip NAPTR: {seen:?}"
    );
}

/// A name the (scripted, loopback) DNS server knows nothing about: a dns verdict, every step
/// recorded, and no query leaves the machine.
#[test]
fn unknown_name_is_dns() {
    let rt = rt();
    let (dns, server) = dns_server(vec![]);
    let t = ProbeTarget {
        host: "sip.nowhere.test".into(),
        port: None,
        transport: Transport::Tls,
        domain: "nowhere.test".into(),
        tls_trust: vec![],
        insecure_continue: false,
    };
    let o = ProbeOptions {
        dns_server: Some(dns),
        ..opts()
    };
    let r = rt.block_on(sip_probe::options(&t, &o));
    check(&r, Category::Dns, &[]);
    assert!(r.trace.is_empty(), "nothing sent");
    let kinds: Vec<&str> = r.resolution.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds, ["naptr", "srv", "a/aaaa"], "{:?}", r.resolution);
    assert_eq!(r.resolution[1].query, "_sips._tcp.sip.nowhere.test.");
    assert!(
        r.resolution.iter().all(|s| s.error.is_some()),
        "{:?}",
        r.resolution
    );
    let seen = server.join().expect("dns thread");
    assert!(
        seen.iter().any(|q| q == "SRV _sips._tcp.sip.nowhere.test."),
        "{seen:?}"
    );
}
