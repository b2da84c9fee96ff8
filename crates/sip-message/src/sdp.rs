//! SDP session descriptions (RFC 4566): lenient parse, print, and the typed parts a call check
//! needs (connection address, media ports and formats, rtpmap, direction).

use crate::{Diagnostic, Severity};
use serde::Serialize;
use std::fmt;

/// One `<type>=<value>` line, kept in order so printing gives back the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SdpLine {
    pub kind: char,
    pub value: String,
}

/// A media section: the parsed `m=` line and the lines after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MediaDescription {
    pub media: String,
    pub port: u16,
    pub num_ports: Option<u16>,
    pub proto: String,
    pub formats: Vec<String>,
    pub lines: Vec<SdpLine>,
}

/// A whole description: session-level lines, then media sections.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SessionDescription {
    pub session: Vec<SdpLine>,
    pub media: Vec<MediaDescription>,
}

/// `c=` (RFC 4566 §5.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connection {
    pub nettype: String,
    pub addrtype: String,
    /// Without any `/ttl` suffix.
    pub address: String,
}

/// `a=rtpmap:` (RFC 4566 §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RtpMap {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u8>,
}

/// Media direction attributes (RFC 4566 §6; sendrecv is the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

fn parse_connection(v: &str) -> Option<Connection> {
    let mut it = v.split_whitespace();
    let nettype = it.next()?.to_owned();
    let addrtype = it.next()?.to_owned();
    let address = it.next()?.split('/').next()?.to_owned();
    Some(Connection {
        nettype,
        addrtype,
        address,
    })
}

fn attributes<'a>(lines: &'a [SdpLine]) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
    lines
        .iter()
        .filter(|l| l.kind == 'a')
        .map(|l| match l.value.split_once(':') {
            Some((n, v)) => (n, Some(v)),
            None => (l.value.as_str(), None),
        })
}

fn direction_of(lines: &[SdpLine]) -> Option<Direction> {
    attributes(lines).find_map(|(n, _)| match n {
        "sendrecv" => Some(Direction::SendRecv),
        "sendonly" => Some(Direction::SendOnly),
        "recvonly" => Some(Direction::RecvOnly),
        "inactive" => Some(Direction::Inactive),
        _ => None,
    })
}

impl MediaDescription {
    /// The media-level `c=` if present.
    pub fn connection(&self) -> Option<Connection> {
        self.lines
            .iter()
            .find(|l| l.kind == 'c')
            .and_then(|l| parse_connection(&l.value))
    }

    /// Every `a=rtpmap` of this section.
    pub fn rtpmaps(&self) -> Vec<RtpMap> {
        attributes(&self.lines)
            .filter(|(n, _)| *n == "rtpmap")
            .filter_map(|(_, v)| {
                let (pt, enc) = v?.split_once(' ')?;
                let mut parts = enc.trim().split('/');
                Some(RtpMap {
                    payload_type: pt.trim().parse().ok()?,
                    encoding: parts.next()?.to_owned(),
                    clock_rate: parts.next()?.parse().ok()?,
                    channels: parts.next().and_then(|c| c.parse().ok()),
                })
            })
            .collect()
    }

    /// The value of an attribute (`a=name:value`); `Some(None)` for a flag attribute.
    pub fn attribute(&self, name: &str) -> Option<Option<&str>> {
        attributes(&self.lines)
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }
}

impl SessionDescription {
    /// Parses SDP. Unknown or malformed lines are kept when possible and reported as diagnostics.
    pub fn parse(input: &[u8]) -> (Self, Vec<Diagnostic>) {
        let mut diags = Vec::new();
        let mut sdp = SessionDescription::default();
        let text = String::from_utf8_lossy(input);
        if std::str::from_utf8(input).is_err() {
            diags.push(Diagnostic {
                severity: Severity::Error,
                offset: 0,
                message: "sdp is not valid UTF-8".to_owned(),
            });
        }
        let mut offset = 0;
        // Lines after an unreadable m= belong to that lost section, not to the session.
        let mut skipping = false;
        for raw in text.split('\n') {
            let line_off = offset;
            offset += raw.len() + 1;
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.is_empty() {
                continue;
            }
            let mut chars = line.chars();
            let kind = chars.next().unwrap_or(' ');
            if chars.next() != Some('=') || !kind.is_ascii_lowercase() {
                diags.push(Diagnostic {
                    severity: Severity::Error,
                    offset: line_off,
                    message: format!("sdp line is not <type>=<value>: {line:?}"),
                });
                continue;
            }
            let value = line[2..].to_owned();
            if kind == 'm' {
                let mut it = value.split_whitespace();
                let media = it.next().unwrap_or_default().to_owned();
                let port_part = it.next().unwrap_or_default();
                let (port, num_ports) = match port_part.split_once('/') {
                    Some((p, n)) => (p.parse::<u16>().ok(), n.parse::<u16>().ok()),
                    None => (port_part.parse::<u16>().ok(), None),
                };
                let proto = it.next().unwrap_or_default().to_owned();
                let formats: Vec<String> = it.map(str::to_owned).collect();
                let Some(port) = port else {
                    diags.push(Diagnostic {
                        severity: Severity::Error,
                        offset: line_off,
                        message: format!("m= line has no valid port: {value:?}"),
                    });
                    skipping = true;
                    continue;
                };
                skipping = false;
                if proto.is_empty() || formats.is_empty() {
                    diags.push(Diagnostic {
                        severity: Severity::Error,
                        offset: line_off,
                        message: format!("m= line lacks proto or formats: {value:?}"),
                    });
                }
                sdp.media.push(MediaDescription {
                    media,
                    port,
                    num_ports,
                    proto,
                    formats,
                    lines: Vec::new(),
                });
                continue;
            }
            if kind == 'c' && parse_connection(&value).is_none() {
                diags.push(Diagnostic {
                    severity: Severity::Error,
                    offset: line_off,
                    message: format!("invalid c= line: {value:?}"),
                });
            }
            if skipping {
                continue;
            }
            let l = SdpLine { kind, value };
            match sdp.media.last_mut() {
                Some(m) => m.lines.push(l),
                None => sdp.session.push(l),
            }
        }
        if sdp.session.first().map(|l| l.kind) != Some('v') {
            diags.push(Diagnostic {
                severity: Severity::Warning,
                offset: 0,
                message: "sdp does not start with v=".to_owned(),
            });
        }
        for m in &sdp.media {
            if m.connection().is_none() && sdp.connection().is_none() {
                diags.push(Diagnostic {
                    severity: Severity::Error,
                    offset: 0,
                    message: format!(
                        "media {} has no c= line at either level (RFC 4566 §5.7)",
                        m.media
                    ),
                });
            }
        }
        (sdp, diags)
    }

    /// The session-level `c=`.
    pub fn connection(&self) -> Option<Connection> {
        self.session
            .iter()
            .find(|l| l.kind == 'c')
            .and_then(|l| parse_connection(&l.value))
    }

    /// The connection that applies to a media section (its own, else the session's).
    pub fn media_connection(&self, index: usize) -> Option<Connection> {
        self.media
            .get(index)
            .and_then(MediaDescription::connection)
            .or_else(|| self.connection())
    }

    /// The direction that applies to a media section (media, then session level, then sendrecv).
    pub fn media_direction(&self, index: usize) -> Direction {
        self.media
            .get(index)
            .and_then(|m| direction_of(&m.lines))
            .or_else(|| direction_of(&self.session))
            .unwrap_or(Direction::SendRecv)
    }

    /// The first audio section, if any.
    pub fn audio(&self) -> Option<(usize, &MediaDescription)> {
        self.media
            .iter()
            .enumerate()
            .find(|(_, m)| m.media == "audio")
    }

    /// An offer with one RTP/AVP audio section for the given payloads `(pt, "PCMU/8000")`.
    pub fn audio_offer(ip: &str, port: u16, session_id: u64, payloads: &[(u8, &str)]) -> Self {
        let addrtype = if ip.contains(':') { "IP6" } else { "IP4" };
        let line = |kind, value: String| SdpLine { kind, value };
        let mut lines: Vec<SdpLine> = payloads
            .iter()
            .map(|(pt, enc)| line('a', format!("rtpmap:{pt} {enc}")))
            .collect();
        lines.push(line('a', "ptime:20".to_owned()));
        lines.push(line('a', "sendrecv".to_owned()));
        SessionDescription {
            session: vec![
                line('v', "0".to_owned()),
                line(
                    'o',
                    format!("dialtone {session_id} {session_id} IN {addrtype} {ip}"),
                ),
                line('s', "dialtone probe".to_owned()),
                line('c', format!("IN {addrtype} {ip}")),
                line('t', "0 0".to_owned()),
            ],
            media: vec![MediaDescription {
                media: "audio".to_owned(),
                port,
                num_ports: None,
                proto: "RTP/AVP".to_owned(),
                formats: payloads.iter().map(|(pt, _)| pt.to_string()).collect(),
                lines,
            }],
        }
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.session {
            write!(f, "{}={}\r\n", l.kind, l.value)?;
        }
        for m in &self.media {
            write!(f, "m={} {}", m.media, m.port)?;
            if let Some(n) = m.num_ports {
                write!(f, "/{n}")?;
            }
            write!(f, " {}", m.proto)?;
            for fmt_ in &m.formats {
                write!(f, " {fmt_}")?;
            }
            f.write_str("\r\n")?;
            for l in &m.lines {
                write!(f, "{}={}\r\n", l.kind, l.value)?;
            }
        }
        Ok(())
    }
}
