//! The HEP capture endpoint: UDP and TCP listeners feed a bounded queue, one writer commits it
//! to the window in batches, until shutdown (then it flushes what is queued).

use crate::Error;
use crate::events::SipRecord;
use crate::events::{Skip, record_from_hep};
use crate::hep::{self, Frame, Framer};
use crate::store::{EventStore, StoreConfig};
use serde::Serialize;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// At most this many HEP-over-TCP connections at once; more are closed at once.
pub const MAX_TCP_CONNECTIONS: usize = 256;
/// A log line about malformed or dropped packets at most this often.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// A TCP connection sending nothing for this long is closed.
const TCP_IDLE: Duration = Duration::from_secs(300);
/// How often the UDP reader looks at the stop flag when no packet comes.
const UDP_POLL: Duration = Duration::from_millis(100);
/// The UDP receive buffer asked for (the kernel caps it at `net.core.rmem_max`): bursts wait
/// there while the reader is busy, instead of being lost.
pub const UDP_RECV_BUFFER: usize = 8 << 20;
/// Pruning runs at most this often.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// The collector's counters.
#[derive(Debug, Default)]
pub struct CollectorStats {
    received: AtomicU64,
    stored: AtomicU64,
    malformed: AtomicU64,
    ignored: AtomicU64,
    dropped: AtomicU64,
    pruned: AtomicU64,
    last_malformed_log: Mutex<Option<Instant>>,
    last_drop_log: Mutex<Option<Instant>>,
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Counts {
    /// Packets (datagrams or TCP frames) received.
    pub received: u64,
    /// SIP messages committed to the window.
    pub stored: u64,
    /// Packets that were not valid HEPv3.
    pub malformed: u64,
    /// Valid packets not kept: not SIP, a method the window ignores, or no Call-ID/CSeq.
    pub ignored: u64,
    /// Messages dropped because the queue was full.
    pub dropped: u64,
    /// Message rows removed by the bounds.
    pub pruned: u64,
}

impl CollectorStats {
    pub fn snapshot(&self) -> Counts {
        Counts {
            received: self.received.load(Ordering::Relaxed),
            stored: self.stored.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            ignored: self.ignored.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            pruned: self.pruned.load(Ordering::Relaxed),
        }
    }
}

fn due(slot: &Mutex<Option<Instant>>) -> bool {
    let Ok(mut last) = slot.lock() else {
        return false;
    };
    let now = Instant::now();
    match *last {
        Some(t) if now.duration_since(t) < LOG_EVERY => false,
        _ => {
            *last = Some(now);
            true
        }
    }
}

/// Where packets enter: decodes, extracts and queues (never waits; a full queue drops).
#[derive(Clone, Debug)]
pub struct Ingest {
    tx: mpsc::Sender<SipRecord>,
    stats: Arc<CollectorStats>,
}

impl Ingest {
    /// Offers one HEP packet received from `peer`.
    pub fn offer(&self, packet: &[u8], peer: SocketAddr) {
        let s = &self.stats;
        s.received.fetch_add(1, Ordering::Relaxed);
        let p = match hep::decode(packet) {
            Ok(p) => p,
            Err(e) => {
                let n = s.malformed.fetch_add(1, Ordering::Relaxed) + 1;
                if due(&s.last_malformed_log) {
                    // The error names lengths and offsets only, never a chunk's value.
                    tracing::warn!(%peer, malformed_so_far = n, "malformed HEP packet: {e}");
                }
                return;
            }
        };
        let now = chrono::Utc::now().timestamp_micros();
        let record = match record_from_hep(&p, now) {
            Ok(r) => r,
            Err(Skip::NotSip | Skip::Uninteresting | Skip::Unpairable) => {
                s.ignored.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        if self.tx.try_send(record).is_err() {
            let n = s.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if due(&s.last_drop_log) {
                tracing::warn!(
                    dropped_so_far = n,
                    "event queue full: dropping messages (the writer is behind)"
                );
            }
        }
    }
}

/// The HEP capture endpoint. See the crate documentation.
pub struct Collector {
    udp: Option<UdpSocket>,
    tcp: Option<TcpListener>,
    store: EventStore,
    ingest: Ingest,
    rx: mpsc::Receiver<SipRecord>,
    stats: Arc<CollectorStats>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("udp", &self.udp_addr())
            .field("tcp", &self.tcp_addr())
            .finish()
    }
}

async fn bind_udp(addr: SocketAddr) -> Result<UdpSocket, Error> {
    UdpSocket::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

async fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

impl Collector {
    /// Binds the listeners given (either may be absent) and opens the window's file.
    pub async fn bind(
        udp: Option<SocketAddr>,
        tcp: Option<SocketAddr>,
        cfg: StoreConfig,
    ) -> Result<Collector, Error> {
        let udp = match udp {
            Some(a) => Some(bind_udp(a).await?),
            None => None,
        };
        let tcp = match tcp {
            Some(a) => Some(bind_tcp(a).await?),
            None => None,
        };
        Self::with_sockets(udp, tcp, cfg).await
    }

    /// Binds UDP and TCP on the same address and port (the HOMER convention, e.g. 9060); with
    /// port 0, the port UDP got is tried for TCP too (a few times).
    pub async fn bind_same_port(addr: SocketAddr, cfg: StoreConfig) -> Result<Collector, Error> {
        if addr.port() != 0 {
            return Self::bind(Some(addr), Some(addr), cfg).await;
        }
        let mut last = None;
        for _ in 0..20 {
            let udp = bind_udp(addr).await?;
            let got = udp
                .local_addr()
                .map_err(|source| Error::Bind { addr, source })?;
            match TcpListener::bind(got).await {
                Ok(tcp) => return Self::with_sockets(Some(udp), Some(tcp), cfg).await,
                Err(source) => last = Some(Error::Bind { addr: got, source }),
            }
        }
        Err(last.unwrap_or(Error::Bind {
            addr,
            source: std::io::Error::other("no free port for both UDP and TCP"),
        }))
    }

    async fn with_sockets(
        udp: Option<UdpSocket>,
        tcp: Option<TcpListener>,
        cfg: StoreConfig,
    ) -> Result<Collector, Error> {
        let capacity = cfg.queue_capacity.max(1);
        let store = EventStore::open(cfg).await?;
        let (tx, rx) = mpsc::channel(capacity);
        let stats = Arc::new(CollectorStats::default());
        Ok(Collector {
            udp,
            tcp,
            store,
            ingest: Ingest {
                tx,
                stats: stats.clone(),
            },
            rx,
            stats,
        })
    }

    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().and_then(|s| s.local_addr().ok())
    }

    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// A handle that feeds packets as if received (the listeners use the same).
    pub fn ingest(&self) -> Ingest {
        self.ingest.clone()
    }

    /// The live counters.
    pub fn stats(&self) -> Arc<CollectorStats> {
        self.stats.clone()
    }

    /// Receives and stores until `shutdown` completes, then commits what is queued, applies
    /// the bounds and closes the file. Returns the final counters.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<Counts, Error> {
        let Collector {
            udp,
            tcp,
            store,
            ingest,
            mut rx,
            stats,
        } = self;
        let mut tasks = tokio::task::JoinSet::new();
        let stop_udp = Arc::new(AtomicBool::new(false));
        let udp_thread = match udp {
            Some(sock) => Some(spawn_udp_thread(sock, ingest.clone(), stop_udp.clone())?),
            None => None,
        };
        if let Some(listener) = tcp {
            tasks.spawn(tcp_loop(listener, ingest.clone()));
        }
        drop(ingest);
        let cfg = store.config().clone();
        let batch_max = cfg.batch_max.max(1);
        let mut batch: Vec<SipRecord> = Vec::with_capacity(batch_max.min(65_536));
        let mut tick = tokio::time::interval(cfg.batch_interval.max(Duration::from_millis(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_prune = Instant::now();
        let mut shutdown = std::pin::pin!(shutdown);
        let mut closed = false;
        let result: Result<(), Error> = async {
            loop {
                let room = batch_max.saturating_sub(batch.len());
                let flush = tokio::select! {
                    () = &mut shutdown => break,
                    n = rx.recv_many(&mut batch, room), if !closed && room > 0 => {
                        // 0: every sender is gone (no listener, no ingest handle).
                        closed = n == 0;
                        batch.len() >= batch_max
                    }
                    _ = tick.tick() => true,
                };
                let flush = flush || batch.len() >= batch_max;
                if flush && !batch.is_empty() {
                    let n = store.write_batch(&batch).await?;
                    stats.stored.fetch_add(n as u64, Ordering::Relaxed);
                    batch.clear();
                }
                if last_prune.elapsed() >= PRUNE_EVERY {
                    let n = store.prune().await?;
                    stats.pruned.fetch_add(n, Ordering::Relaxed);
                    last_prune = Instant::now();
                }
            }
            Ok(())
        }
        .await;
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        stop_udp.store(true, Ordering::Relaxed);
        if let Some(t) = udp_thread {
            // It sees the flag within one read timeout.
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        // Whatever is queued is committed before we stop.
        if result.is_ok() {
            while let Ok(r) = rx.try_recv() {
                batch.push(r);
                if batch.len() >= batch_max {
                    let n = store.write_batch(&batch).await?;
                    stats.stored.fetch_add(n as u64, Ordering::Relaxed);
                    batch.clear();
                }
            }
            let n = store.write_batch(&batch).await?;
            stats.stored.fetch_add(n as u64, Ordering::Relaxed);
            let n = store.prune().await?;
            stats.pruned.fetch_add(n, Ordering::Relaxed);
        }
        store.close().await;
        result?;
        let counts = stats.snapshot();
        tracing::info!(?counts, "collector stopped");
        Ok(counts)
    }
}

/// UDP is read by an OS thread of its own: the kernel's receive buffer holds only a few
/// milliseconds of traffic, so the reader must not wait behind the writer's batch work.
fn spawn_udp_thread(
    sock: UdpSocket,
    ingest: Ingest,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, Error> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| Error::Io { what, source }
    };
    let sock = sock
        .into_std()
        .map_err(io("cannot take the HEP UDP socket"))?;
    sock.set_nonblocking(false)
        .map_err(io("cannot make the HEP UDP socket blocking"))?;
    sock.set_read_timeout(Some(UDP_POLL))
        .map_err(io("cannot set the HEP UDP read timeout"))?;
    // Best effort: a smaller buffer only means bursts are lost sooner.
    let sref = socket2::SockRef::from(&sock);
    if let Err(e) = sref.set_recv_buffer_size(UDP_RECV_BUFFER) {
        tracing::debug!("cannot enlarge the HEP UDP receive buffer: {e}");
    }
    if let Ok(got) = sref.recv_buffer_size() {
        tracing::info!(
            bytes = got,
            "HEP UDP receive buffer (raise net.core.rmem_max for a larger one)"
        );
    }
    std::thread::Builder::new()
        .name("hep-udp".into())
        .spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while !stop.load(Ordering::Relaxed) {
                match sock.recv_from(&mut buf) {
                    Ok((n, peer)) => ingest.offer(&buf[..n], peer),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    // ICMP errors and the like: note and go on.
                    Err(e) => tracing::debug!("HEP UDP receive error: {e}"),
                }
            }
        })
        .map_err(io("cannot start the HEP UDP reader thread"))
}

async fn tcp_loop(listener: TcpListener, ingest: Ingest) {
    let active = Arc::new(tokio::sync::Semaphore::new(MAX_TCP_CONNECTIONS));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        // Finished connection tasks are reaped as we go.
        while conns.try_join_next().is_some() {}
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!("HEP TCP accept error: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = active.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "too many HEP TCP connections ({MAX_TCP_CONNECTIONS}): closing this one");
            continue;
        };
        let ingest = ingest.clone();
        conns.spawn(async move {
            tcp_connection(stream, peer, ingest).await;
            drop(permit);
        });
    }
}

async fn tcp_connection(mut stream: TcpStream, peer: SocketAddr, ingest: Ingest) {
    let mut framer = Framer::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let n = match tokio::time::timeout(TCP_IDLE, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::debug!(%peer, "HEP TCP read error: {e}");
                break;
            }
        };
        framer.push(&buf[..n]);
        // Every whole frame of the buffer, then one shift of what is left.
        let mut off = 0;
        loop {
            match hep::frame(&framer.buffer()[off..]) {
                Frame::Packet(len) => {
                    ingest.offer(&framer.buffer()[off..off + len], peer);
                    off += len;
                }
                Frame::Garbage(len) => {
                    let s = &ingest.stats;
                    let count = s.malformed.fetch_add(1, Ordering::Relaxed) + 1;
                    if due(&s.last_malformed_log) {
                        tracing::warn!(%peer, bytes = len, malformed_so_far = count, "skipping bytes that are not HEPv3 in a TCP stream");
                    }
                    off += len;
                }
                Frame::NeedMore => break,
            }
        }
        framer.consume(off);
    }
}
