//! Typed views of the headers a diagnosis needs (RFC 3261 §20, RFC 7616 for digest).
//!
//! Each accessor on [`Headers`] returns `Ok(None)`/`Ok(vec![])` when the header is absent and
//! `Err` when it is present but unreadable, so callers can report "malformed Via" distinctly.

use crate::headers::{Headers, split_list};
use crate::params::{Param, find, parse_params, split_outside_quotes, unquote, write_params};
use crate::scan::find_unquoted;
use crate::uri::{Uri, split_host_port};
use crate::{Error, Method, Result};
use serde::Serialize;
use std::fmt;

fn invalid(name: &'static str, value: &str, reason: &'static str) -> Error {
    Error::InvalidHeader {
        name,
        value: crate::redact_text(value),
        reason,
    }
}

/// One Via entry (RFC 3261 §20.42, §18.2.1 received, RFC 3581 rport).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Via {
    /// `SIP/2.0`.
    pub protocol: String,
    /// `UDP`, `TCP`, `TLS`, `WS`, ... as written (upper-cased).
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<Param>,
}

impl Via {
    /// Parses one via-parm.
    pub fn parse(value: &str) -> Result<Self> {
        let bad = |r| invalid("Via", value, r);
        let v = value.trim();
        // sent-protocol = protocol-name SLASH protocol-version SLASH transport, LWS allowed around SLASH.
        let mut rest = v;
        let mut parts = Vec::with_capacity(3);
        for i in 0..3 {
            let r = rest.trim_start();
            let end = if i < 2 {
                r.find('/')
                    .ok_or_else(|| bad("sent-protocol needs two slashes"))?
            } else {
                r.find(|c: char| c.is_ascii_whitespace())
                    .ok_or_else(|| bad("no sent-by"))?
            };
            parts.push(r[..end].trim());
            rest = if i < 2 { &r[end + 1..] } else { &r[end..] };
        }
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad("empty sent-protocol part"));
        }
        let rest = rest.trim_start();
        let (sent_by, params) = match rest.split_once(';') {
            Some((s, p)) => (s, parse_params(p)),
            None => (rest, Vec::new()),
        };
        let (host, port) = split_host_port(sent_by).ok_or_else(|| bad("invalid sent-by"))?;
        Ok(Self {
            protocol: format!("{}/{}", parts[0], parts[1]),
            transport: parts[2].to_ascii_uppercase(),
            host,
            port,
            params,
        })
    }

    /// The transaction id; RFC 3261 §8.1.1.7 requires the `z9hG4bK` magic cookie prefix.
    pub fn branch(&self) -> Option<&str> {
        find(&self.params, "branch").and_then(|p| p.value.as_deref())
    }

    /// The `received` address a server stamped (RFC 3261 §18.2.1).
    pub fn received(&self) -> Option<&str> {
        find(&self.params, "received").and_then(|p| p.value.as_deref())
    }

    /// `None`: no rport; `Some(None)`: requested but not filled; `Some(Some(p))`: the server's view (RFC 3581).
    pub fn rport(&self) -> Option<Option<u16>> {
        find(&self.params, "rport").map(|p| p.value.as_deref().and_then(|v| v.parse().ok()))
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} {}", self.protocol, self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write_params(f, &self.params)
    }
}

/// `name-addr` or `addr-spec` with header params (From, To, Contact, Route, RFC 3261 §20.10, §20.20, §20.39).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameAddr {
    pub display: Option<String>,
    pub uri: Uri,
    pub params: Vec<Param>,
}

impl NameAddr {
    /// Wraps a URI with no display name or params.
    pub fn new(uri: Uri) -> Self {
        Self {
            display: None,
            uri,
            params: Vec::new(),
        }
    }

    /// Adds a header parameter (builder style).
    pub fn with_param(mut self, name: &str, value: Option<&str>) -> Self {
        self.params.push(Param::new(name, value));
        self
    }

    /// Parses one element; `name` is only used in errors.
    pub fn parse(value: &str, name: &'static str) -> Result<Self> {
        let v = value.trim();
        if let Some(lt) = find_unquoted(v, b'<') {
            let display = v[..lt].trim();
            let after = &v[lt + 1..];
            let gt = after
                .find('>')
                .ok_or_else(|| invalid(name, value, "missing '>'"))?;
            let uri = Uri::parse(&after[..gt]).map_err(|_| invalid(name, value, "invalid uri"))?;
            let tail = after[gt + 1..].trim_start();
            let params = match tail.strip_prefix(';') {
                Some(p) => parse_params(p),
                None if tail.is_empty() => Vec::new(),
                None => return Err(invalid(name, value, "text after '>'")),
            };
            let display = if display.is_empty() {
                None
            } else {
                if display.starts_with('"') && (!display.ends_with('"') || display.len() < 2) {
                    return Err(invalid(name, value, "unterminated display name"));
                }
                Some(unquote(display))
            };
            Ok(Self {
                display,
                uri,
                params,
            })
        } else {
            // addr-spec form: parameters after the URI belong to the header, not the URI (§20.10).
            let (uri, params) = match v.split_once(';') {
                Some((u, p)) => (u, parse_params(p)),
                None => (v, Vec::new()),
            };
            let uri = uri.trim();
            if uri.contains(|c: char| c.is_ascii_whitespace()) {
                return Err(invalid(
                    name,
                    value,
                    "space in addr-spec (display name without <uri>?)",
                ));
            }
            let uri = Uri::parse(uri).map_err(|_| invalid(name, value, "invalid uri"))?;
            Ok(Self {
                display: None,
                uri,
                params,
            })
        }
    }

    /// The dialog `tag` parameter (RFC 3261 §19.3).
    pub fn tag(&self) -> Option<&str> {
        find(&self.params, "tag").and_then(|p| p.value.as_deref())
    }

    /// A Contact's `expires` parameter in seconds (RFC 3261 §10.2.1).
    pub fn expires(&self) -> Option<u32> {
        find(&self.params, "expires").and_then(|p| p.value.as_deref()?.parse().ok())
    }

    /// Any header parameter.
    pub fn param(&self, name: &str) -> Option<&Param> {
        find(&self.params, name)
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "\"{}\" ", d.replace('\\', "\\\\").replace('"', "\\\""))?;
        }
        write!(f, "<{}>", self.uri)?;
        write_params(f, &self.params)
    }
}

/// CSeq (RFC 3261 §20.16).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    /// Parses `number method`.
    pub fn parse(value: &str) -> Result<Self> {
        let mut it = value.split_whitespace();
        let seq = it
            .next()
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or_else(|| invalid("CSeq", value, "sequence number is not a 32-bit integer"))?;
        let method = it
            .next()
            .ok_or_else(|| invalid("CSeq", value, "no method"))?;
        if it.next().is_some() {
            return Err(invalid("CSeq", value, "extra text"));
        }
        Ok(Self {
            seq,
            method: Method::from_token(method),
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// A WWW-Authenticate / Proxy-Authenticate digest challenge (RFC 7616 §3.3, RFC 8760).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestChallenge {
    pub scheme: String,
    pub realm: Option<String>,
    pub nonce: Option<String>,
    pub opaque: Option<String>,
    /// As sent (`MD5` when absent, RFC 7616 §3.3).
    pub algorithm: Option<String>,
    pub qop: Vec<String>,
    pub stale: bool,
    pub params: Vec<Param>,
}

fn auth_params(value: &str, name: &'static str) -> Result<(String, Vec<Param>)> {
    let v = value.trim();
    let (scheme, rest) = match v.find(|c: char| c.is_ascii_whitespace()) {
        Some(i) => (&v[..i], &v[i..]),
        None => (v, ""),
    };
    if scheme.is_empty() {
        return Err(invalid(name, value, "no auth scheme"));
    }
    let mut params = Vec::new();
    for item in split_outside_quotes(rest, b',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (n, val) = item
            .split_once('=')
            .ok_or_else(|| invalid(name, value, "auth-param without '='"))?;
        params.push(Param::new(n.trim(), Some(val.trim())));
    }
    Ok((scheme.to_owned(), params))
}

impl DigestChallenge {
    /// Parses a challenge header value.
    pub fn parse(value: &str, name: &'static str) -> Result<Self> {
        let (scheme, params) = auth_params(value, name)?;
        let get = |n: &str| find(&params, n).and_then(Param::unquoted);
        Ok(Self {
            realm: get("realm"),
            nonce: get("nonce"),
            opaque: get("opaque"),
            algorithm: get("algorithm"),
            qop: get("qop")
                .map(|q| {
                    q.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
            scheme,
            params,
        })
    }

    /// True for the Digest scheme (case-insensitive).
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("digest")
    }
}

/// Authorization / Proxy-Authorization credentials (RFC 3261 §20.7, RFC 7616 §3.4).
/// Debug and Serialize never show the `response` value.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Credentials {
    pub scheme: String,
    #[serde(serialize_with = "redacted_params")]
    pub params: Vec<Param>,
}

fn redacted_params<S: serde::Serializer>(
    p: &[Param],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(p.len()))?;
    for param in p {
        if param.name.eq_ignore_ascii_case("response") {
            seq.serialize_element(&Param::new("response", Some(crate::REDACTED)))?;
        } else {
            seq.serialize_element(param)?;
        }
    }
    seq.end()
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("scheme", &self.scheme)
            .field("username", &self.param("username"))
            .field("realm", &self.param("realm"))
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Parses a credentials header value.
    pub fn parse(value: &str, name: &'static str) -> Result<Self> {
        let (scheme, params) = auth_params(value, name)?;
        Ok(Self { scheme, params })
    }

    /// An unquoted parameter value (`username`, `realm`, `nonce`, `uri`, `response`, ...).
    pub fn param(&self, name: &str) -> Option<String> {
        find(&self.params, name).and_then(Param::unquoted)
    }
}

/// Warning (RFC 3261 §20.43): `code agent "text"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub code: u16,
    pub agent: String,
    pub text: String,
}

impl Warning {
    /// Parses one warning-value.
    pub fn parse(value: &str) -> Result<Self> {
        let v = value.trim();
        let (code, rest) = v
            .split_once(' ')
            .ok_or_else(|| invalid("Warning", value, "no agent"))?;
        let code = code
            .parse::<u16>()
            .ok()
            .filter(|c| (100..1000).contains(c))
            .ok_or_else(|| invalid("Warning", value, "warn-code is not 3 digits"))?;
        let (agent, text) = rest
            .trim_start()
            .split_once(' ')
            .ok_or_else(|| invalid("Warning", value, "no warn-text"))?;
        Ok(Self {
            code,
            agent: agent.to_owned(),
            text: unquote(text),
        })
    }
}

/// Reason (RFC 3326): `protocol;cause=N;text="..."`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub protocol: String,
    pub cause: Option<u16>,
    pub text: Option<String>,
}

impl Reason {
    /// Parses one reason-value.
    pub fn parse(value: &str) -> Result<Self> {
        let (proto, params) = match value.split_once(';') {
            Some((p, rest)) => (p.trim(), parse_params(rest)),
            None => (value.trim(), Vec::new()),
        };
        if proto.is_empty() {
            return Err(invalid("Reason", value, "no protocol"));
        }
        Ok(Self {
            protocol: proto.to_owned(),
            cause: find(&params, "cause").and_then(|p| p.value.as_deref()?.parse().ok()),
            text: find(&params, "text").and_then(Param::unquoted),
        })
    }
}

fn parse_u32(h: &Headers, name: &'static str) -> Result<Option<u32>> {
    match h.get(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<u32>()
            .map(Some)
            .map_err(|_| invalid(name, v, "not a non-negative integer")),
    }
}

impl Headers {
    /// Every Via entry, topmost first.
    pub fn via(&self) -> Result<Vec<Via>> {
        self.get_list("Via").into_iter().map(Via::parse).collect()
    }

    /// From.
    pub fn from(&self) -> Result<Option<NameAddr>> {
        self.get("From")
            .map(|v| NameAddr::parse(v, "From"))
            .transpose()
    }

    /// To.
    pub fn to(&self) -> Result<Option<NameAddr>> {
        self.get("To").map(|v| NameAddr::parse(v, "To")).transpose()
    }

    /// Call-ID.
    pub fn call_id(&self) -> Option<&str> {
        self.get("Call-ID")
    }

    /// CSeq.
    pub fn cseq(&self) -> Result<Option<CSeq>> {
        self.get("CSeq").map(CSeq::parse).transpose()
    }

    /// Contact entries; a `*` wildcard (REGISTER removal, §10.2.2) yields an empty list, see [`Headers::contact_is_wildcard`].
    pub fn contacts(&self) -> Result<Vec<NameAddr>> {
        self.get_list("Contact")
            .into_iter()
            .filter(|v| *v != "*")
            .map(|v| NameAddr::parse(v, "Contact"))
            .collect()
    }

    /// True if Contact is `*`.
    pub fn contact_is_wildcard(&self) -> bool {
        self.get_list("Contact").contains(&"*")
    }

    /// Expires in seconds.
    pub fn expires(&self) -> Result<Option<u32>> {
        parse_u32(self, "Expires")
    }

    /// Max-Forwards.
    pub fn max_forwards(&self) -> Result<Option<u32>> {
        parse_u32(self, "Max-Forwards")
    }

    /// Content-Length.
    pub fn content_length(&self) -> Result<Option<u32>> {
        parse_u32(self, "Content-Length")
    }

    /// Content-Type, as written.
    pub fn content_type(&self) -> Option<&str> {
        self.get("Content-Type")
    }

    /// WWW-Authenticate challenges (401).
    pub fn www_authenticate(&self) -> Result<Vec<DigestChallenge>> {
        self.get_all("WWW-Authenticate")
            .map(|v| DigestChallenge::parse(v, "WWW-Authenticate"))
            .collect()
    }

    /// Proxy-Authenticate challenges (407).
    pub fn proxy_authenticate(&self) -> Result<Vec<DigestChallenge>> {
        self.get_all("Proxy-Authenticate")
            .map(|v| DigestChallenge::parse(v, "Proxy-Authenticate"))
            .collect()
    }

    /// Authorization credentials.
    pub fn authorization(&self) -> Result<Option<Credentials>> {
        self.get("Authorization")
            .map(|v| Credentials::parse(v, "Authorization"))
            .transpose()
    }

    /// Proxy-Authorization credentials.
    pub fn proxy_authorization(&self) -> Result<Option<Credentials>> {
        self.get("Proxy-Authorization")
            .map(|v| Credentials::parse(v, "Proxy-Authorization"))
            .transpose()
    }

    /// Warning values.
    pub fn warnings(&self) -> Result<Vec<Warning>> {
        self.get_list("Warning")
            .into_iter()
            .map(Warning::parse)
            .collect()
    }

    /// Reason values.
    pub fn reasons(&self) -> Result<Vec<Reason>> {
        self.get_list("Reason")
            .into_iter()
            .map(Reason::parse)
            .collect()
    }

    /// User-Agent.
    pub fn user_agent(&self) -> Option<&str> {
        self.get("User-Agent")
    }

    /// Server.
    pub fn server(&self) -> Option<&str> {
        self.get("Server")
    }

    /// Record-Route entries, in order.
    pub fn record_route(&self) -> Result<Vec<NameAddr>> {
        self.get_list("Record-Route")
            .into_iter()
            .map(|v| NameAddr::parse(v, "Record-Route"))
            .collect()
    }

    /// Route entries, in order.
    pub fn route(&self) -> Result<Vec<NameAddr>> {
        self.get_list("Route")
            .into_iter()
            .map(|v| NameAddr::parse(v, "Route"))
            .collect()
    }

    /// Values of a token-list header (Allow, Supported, Require), split on commas.
    pub fn tokens(&self, name: &str) -> Vec<String> {
        self.get_all(name)
            .flat_map(split_list)
            .map(str::to_owned)
            .collect()
    }
}
