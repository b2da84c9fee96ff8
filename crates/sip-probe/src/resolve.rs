//! RFC 3263 §4 target resolution: an IP literal or an explicit port skips NAPTR/SRV; otherwise
//! NAPTR (SIP+D2U / SIP+D2T / SIPS+D2T), then SRV (`_sip._udp`, `_sip._tcp`, `_sips._tcp`),
//! then A/AAAA. Each step is recorded with its answers, TTL and timing.

use crate::{ProbeOptions, ProbeTarget, ResolutionStep, Transport};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The ordered list of addresses to try, or the reason there is none.
pub(crate) struct Resolved {
    pub addrs: Vec<SocketAddr>,
    pub steps: Vec<ResolutionStep>,
    pub error: Option<String>,
}

fn step(kind: &str, query: &str, started: Instant) -> ResolutionStep {
    ResolutionStep {
        kind: kind.to_owned(),
        query: query.to_owned(),
        answers: Vec::new(),
        ttl: None,
        elapsed_ms: started.elapsed().as_millis() as u64,
        error: None,
    }
}

fn resolver(opts: &ProbeOptions) -> Result<TokioResolver, String> {
    let mut builder = match opts.dns_server {
        Some(addr) => {
            let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
            for c in &mut ns.connections {
                c.port = addr.port();
            }
            let cfg = ResolverConfig::from_parts(None, vec![], vec![ns]);
            TokioResolver::builder_with_config(cfg, TokioRuntimeProvider::default())
        }
        None => TokioResolver::builder_tokio().map_err(|e| format!("system resolver: {e}"))?,
    };
    let o = builder.options_mut();
    o.timeout = Duration::from_secs(2);
    o.attempts = 1;
    builder.build().map_err(|e| e.to_string())
}

/// Resolves `target` per RFC 3263, bounded by `bound`.
pub(crate) async fn resolve(
    target: &ProbeTarget,
    opts: &ProbeOptions,
    bound: Duration,
) -> Resolved {
    let started = Instant::now();
    let host = target.host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        let port = target.port.unwrap_or(target.transport.default_port());
        let mut s = step("literal", &target.host, started);
        s.answers.push(SocketAddr::new(ip, port).to_string());
        return Resolved {
            addrs: vec![SocketAddr::new(ip, port)],
            steps: vec![s],
            error: None,
        };
    }
    let r = match resolver(opts) {
        Ok(r) => r,
        Err(e) => {
            let mut s = step("config", host, started);
            s.error = Some(e.clone());
            return Resolved {
                addrs: vec![],
                steps: vec![s],
                error: Some(e),
            };
        }
    };
    match tokio::time::timeout(bound, resolve_name(&r, host, target, started)).await {
        Ok(res) => res,
        Err(_) => {
            let mut s = step("timeout", host, started);
            s.error = Some(format!(
                "dns did not answer within {} ms",
                bound.as_millis()
            ));
            Resolved {
                addrs: vec![],
                steps: vec![s],
                error: Some("dns timeout".to_owned()),
            }
        }
    }
}

async fn resolve_name(
    r: &TokioResolver,
    host: &str,
    target: &ProbeTarget,
    started: Instant,
) -> Resolved {
    let mut steps = Vec::new();
    let mut srv_name = None;
    let (naptr_service, srv_prefix) = match target.transport {
        Transport::Udp => ("SIP+D2U", "_sip._udp"),
        Transport::Tcp => ("SIP+D2T", "_sip._tcp"),
        Transport::Tls => ("SIPS+D2T", "_sips._tcp"),
    };
    let mut hosts: Vec<(String, u16)> = Vec::new();
    if target.port.is_none() {
        // §4.1: NAPTR first; a record for our transport with flag "s" names the SRV to query.
        let t0 = Instant::now();
        let mut s = step("naptr", host, started);
        match r.lookup(host, RecordType::NAPTR).await {
            Ok(l) => {
                let mut recs: Vec<_> = l
                    .answers()
                    .iter()
                    .filter_map(|rec| match &rec.data {
                        RData::NAPTR(n) => Some((rec.ttl, n.clone())),
                        _ => None,
                    })
                    .collect();
                recs.sort_by_key(|(_, n)| (n.order, n.preference));
                for (ttl, n) in &recs {
                    let services = String::from_utf8_lossy(&n.services).to_string();
                    s.answers.push(format!(
                        "{} {} \"{}\" \"{services}\" {}",
                        n.order,
                        n.preference,
                        String::from_utf8_lossy(&n.flags),
                        n.replacement
                    ));
                    s.ttl = Some(*ttl);
                    if srv_name.is_none() && services.eq_ignore_ascii_case(naptr_service) {
                        srv_name = Some(n.replacement.to_string());
                    }
                }
            }
            Err(e) => s.error = Some(e.to_string()),
        }
        s.elapsed_ms = t0.elapsed().as_millis() as u64;
        steps.push(s);
        // §4.2: without NAPTR, query SRV for the transport directly.
        let srv_query = srv_name.unwrap_or_else(|| format!("{srv_prefix}.{host}."));
        let t0 = Instant::now();
        let mut s = step("srv", &srv_query, started);
        match r.lookup(srv_query.as_str(), RecordType::SRV).await {
            Ok(l) => {
                let mut recs: Vec<_> = l
                    .answers()
                    .iter()
                    .filter_map(|rec| match &rec.data {
                        RData::SRV(v) => Some((rec.ttl, v.clone())),
                        _ => None,
                    })
                    .collect();
                // RFC 2782: lowest priority first, higher weight first within a priority.
                recs.sort_by_key(|(_, v)| (v.priority, std::cmp::Reverse(v.weight)));
                for (ttl, v) in &recs {
                    s.answers.push(format!(
                        "{} {} {} {}",
                        v.priority, v.weight, v.port, v.target
                    ));
                    s.ttl = Some(*ttl);
                    hosts.push((v.target.to_string(), v.port));
                }
            }
            Err(e) => s.error = Some(e.to_string()),
        }
        s.elapsed_ms = t0.elapsed().as_millis() as u64;
        steps.push(s);
    }
    if hosts.is_empty() {
        hosts.push((
            host.to_owned(),
            target.port.unwrap_or(target.transport.default_port()),
        ));
    }
    let mut addrs = Vec::new();
    let mut last_error = None;
    for (h, port) in hosts {
        let t0 = Instant::now();
        let mut s = step("a/aaaa", &h, started);
        match r.lookup_ip(h.as_str()).await {
            Ok(ips) => {
                for ip in ips.iter() {
                    s.answers.push(ip.to_string());
                    addrs.push(SocketAddr::new(ip, port));
                }
            }
            Err(e) => {
                s.error = Some(e.to_string());
                last_error = Some(format!("{h}: {e}"));
            }
        }
        s.elapsed_ms = t0.elapsed().as_millis() as u64;
        steps.push(s);
    }
    let error = if addrs.is_empty() {
        Some(last_error.unwrap_or_else(|| format!("no address for {host}")))
    } else {
        None
    };
    Resolved {
        addrs,
        steps,
        error,
    }
}
