//! Connections to one SIP next hop: UDP through a *connected* socket (so ICMP port unreachable
//! comes back as ECONNREFUSED at once), TCP and TLS with Content-Length framing (RFC 3261 §18.3).

use crate::tls::Captured;
use crate::{ProbeTarget, Transport};
use sip_message::{FrameResult, frame};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Largest datagram we accept (RFC 3261 §18.1.1 talks of 1300 bytes MTU; servers send more).
const MAX_DATAGRAM: usize = 65_535;

pub(crate) enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream, Vec<u8>),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>, Vec<u8>),
}

/// Why a connection could not be made, already sorted into verdict terms.
#[derive(Debug)]
pub(crate) enum ConnectError {
    Refused(String),
    Unreachable(String),
    Timeout,
    Tls(String),
    Other(String),
}

/// What one receive gave.
pub(crate) enum Recv {
    Data(Vec<u8>),
    Deadline,
    Refused(String),
    Closed,
    Failed(String),
}

/// The local address to bind for a remote: loopback stays on loopback (nothing we start
/// listens beyond 127.0.0.1), other targets use the unspecified address of the same family.
pub(crate) fn bind_ip_for(remote: IpAddr) -> IpAddr {
    match remote {
        IpAddr::V4(v4) if v4.is_loopback() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_loopback() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

fn classify(e: &io::Error) -> ConnectError {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ConnectError::Refused(e.to_string()),
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            ConnectError::Unreachable(e.to_string())
        }
        io::ErrorKind::TimedOut => ConnectError::Timeout,
        _ => ConnectError::Other(e.to_string()),
    }
}

impl Conn {
    /// Connects, bounded by `deadline`.
    pub(crate) async fn connect(
        remote: SocketAddr,
        target: &ProbeTarget,
        tls: Option<(Arc<rustls::ClientConfig>, Captured)>,
        deadline: Instant,
    ) -> Result<Conn, ConnectError> {
        let bound = deadline.saturating_duration_since(Instant::now());
        match target.transport {
            Transport::Udp => {
                let sock = UdpSocket::bind(SocketAddr::new(bind_ip_for(remote.ip()), 0))
                    .await
                    .map_err(|e| ConnectError::Other(format!("bind: {e}")))?;
                sock.connect(remote).await.map_err(|e| classify(&e))?;
                Ok(Conn::Udp(sock))
            }
            Transport::Tcp | Transport::Tls => {
                let tcp = match tokio::time::timeout(bound, TcpStream::connect(remote)).await {
                    Err(_) => return Err(ConnectError::Timeout),
                    Ok(Err(e)) => return Err(classify(&e)),
                    Ok(Ok(s)) => s,
                };
                let _ = tcp.set_nodelay(true);
                if target.transport == Transport::Tcp {
                    return Ok(Conn::Tcp(tcp, Vec::new()));
                }
                let Some((config, _)) = tls else {
                    return Err(ConnectError::Other(
                        "tls requested without a tls configuration".into(),
                    ));
                };
                // RFC 5922 §7: the certificate must match the SIP domain of the target.
                let name = rustls::pki_types::ServerName::try_from(target.domain.clone()).map_err(
                    |e| ConnectError::Tls(format!("server name {:?}: {e}", target.domain)),
                )?;
                let connector = tokio_rustls::TlsConnector::from(config);
                let bound = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(bound, connector.connect(name, tcp)).await {
                    Err(_) => Err(ConnectError::Timeout),
                    Ok(Err(e)) => Err(ConnectError::Tls(e.to_string())),
                    Ok(Ok(s)) => Ok(Conn::Tls(Box::new(s), Vec::new())),
                }
            }
        }
    }

    /// Local and remote addresses.
    pub(crate) fn addrs(&self) -> (Option<SocketAddr>, Option<SocketAddr>) {
        match self {
            Conn::Udp(s) => (s.local_addr().ok(), s.peer_addr().ok()),
            Conn::Tcp(s, _) => (s.local_addr().ok(), s.peer_addr().ok()),
            Conn::Tls(s, _) => {
                let tcp = s.get_ref().0;
                (tcp.local_addr().ok(), tcp.peer_addr().ok())
            }
        }
    }

    /// Negotiated TLS protocol and cipher suite.
    pub(crate) fn tls_params(&self) -> Option<(String, String)> {
        match self {
            Conn::Tls(s, _) => {
                let c = s.get_ref().1;
                Some((
                    c.protocol_version()
                        .map(|v| format!("{v:?}"))
                        .unwrap_or_default(),
                    c.negotiated_cipher_suite()
                        .map(|cs| format!("{:?}", cs.suite()))
                        .unwrap_or_default(),
                ))
            }
            _ => None,
        }
    }

    /// Sends one whole message.
    pub(crate) async fn send(&mut self, bytes: &[u8]) -> Result<(), Recv> {
        let r = match self {
            Conn::Udp(s) => s.send(bytes).await.map(|_| ()),
            Conn::Tcp(s, _) => s.write_all(bytes).await,
            Conn::Tls(s, _) => match s.write_all(bytes).await {
                Ok(()) => s.flush().await,
                Err(e) => Err(e),
            },
        };
        r.map_err(|e| {
            if e.kind() == io::ErrorKind::ConnectionRefused {
                Recv::Refused(e.to_string())
            } else {
                Recv::Failed(e.to_string())
            }
        })
    }

    /// Receives the next whole message, or gives up at `until`.
    pub(crate) async fn recv(&mut self, until: Instant) -> Recv {
        let bound = until.saturating_duration_since(Instant::now());
        match self {
            Conn::Udp(s) => {
                let mut buf = vec![0u8; MAX_DATAGRAM];
                match tokio::time::timeout(bound, s.recv(&mut buf)).await {
                    Err(_) => Recv::Deadline,
                    Ok(Ok(n)) => {
                        buf.truncate(n);
                        Recv::Data(buf)
                    }
                    Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                        Recv::Refused(e.to_string())
                    }
                    Ok(Err(e)) => Recv::Failed(e.to_string()),
                }
            }
            Conn::Tcp(s, buf) => recv_stream(s, buf, until).await,
            Conn::Tls(s, buf) => recv_stream(s.as_mut(), buf, until).await,
        }
    }
}

async fn recv_stream<S: AsyncReadExt + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
    until: Instant,
) -> Recv {
    loop {
        match frame(buf) {
            FrameResult::Complete(n) => {
                let rest = buf.split_off(n);
                let msg = std::mem::replace(buf, rest);
                return Recv::Data(msg);
            }
            FrameResult::Skip(n) => {
                buf.drain(..n.min(buf.len()));
                continue;
            }
            FrameResult::NeedMore => {}
        }
        let bound = until.saturating_duration_since(Instant::now());
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout(bound, s.read(&mut chunk)).await {
            Err(_) => return Recv::Deadline,
            Ok(Ok(0)) => return Recv::Closed,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                return Recv::Refused(e.to_string());
            }
            Ok(Err(e)) => return Recv::Failed(e.to_string()),
        }
    }
}
