//! SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966), with an opaque fallback for other schemes.

use crate::params::{Param, find, parse_params, write_params};
use crate::{Error, Result};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// URI scheme; anything else is kept as `Other` so an unusual Request-URI can still be shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
    Other(String),
}

impl Scheme {
    fn as_str(&self) -> &str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Tel => "tel",
            Scheme::Other(s) => s,
        }
    }
}

/// A parsed URI. For `tel:` the number is in `host`; for other schemes the whole
/// remainder after `scheme:` is in `host` unparsed.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Uri {
    pub scheme: Scheme,
    pub user: Option<String>,
    /// RFC 3261 §19.1.1 discourages passwords in URIs; kept so it can be redacted, never logged.
    pub password: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub params: Vec<Param>,
    /// The `?h=v&...` headers part, unparsed.
    pub headers: Option<String>,
}

impl fmt::Debug for Uri {
    // Debug must never show a password (house rule: secrets never in Debug output).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.clone();
        if shown.password.is_some() {
            shown.password = Some(crate::REDACTED.to_owned());
        }
        write!(f, "Uri({shown})")
    }
}

impl Uri {
    /// A `sip:` URI with optional user.
    pub fn sip(user: Option<&str>, host: &str, port: Option<u16>) -> Self {
        Self {
            scheme: Scheme::Sip,
            user: user.map(str::to_owned),
            password: None,
            host: host.to_owned(),
            port,
            params: Vec::new(),
            headers: None,
        }
    }

    /// Adds a parameter (builder style).
    pub fn with_param(mut self, name: &str, value: Option<&str>) -> Self {
        self.params.push(Param::new(name, value));
        self
    }

    /// Looks up a URI parameter (`transport`, `lr`, `user`, ...).
    pub fn param(&self, name: &str) -> Option<&Param> {
        find(&self.params, name)
    }

    /// `host[:port]` as written.
    pub fn host_port(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{}", self.host, p),
            None => self.host.clone(),
        }
    }

    /// Parses a URI (the `Request-URI` or the inside of `<...>`).
    pub fn parse(input: &str) -> Result<Self> {
        let input = input.trim();
        let err = |reason| Error::InvalidUri {
            input: crate::redact_text(input),
            reason,
        };
        let (scheme, rest) = input.split_once(':').ok_or_else(|| err("no scheme"))?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return Err(err("invalid scheme"));
        }
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "sip" => Scheme::Sip,
            "sips" => Scheme::Sips,
            "tel" => Scheme::Tel,
            _ => Scheme::Other(scheme.to_owned()),
        };
        if rest.is_empty() {
            return Err(err("empty after scheme"));
        }
        match scheme {
            Scheme::Other(_) => Ok(Self {
                scheme,
                user: None,
                password: None,
                host: rest.to_owned(),
                port: None,
                params: Vec::new(),
                headers: None,
            }),
            Scheme::Tel => {
                let (num, params) = match rest.split_once(';') {
                    Some((n, p)) => (n, parse_params(p)),
                    None => (rest, Vec::new()),
                };
                Ok(Self {
                    scheme,
                    user: None,
                    password: None,
                    host: num.to_owned(),
                    port: None,
                    params,
                    headers: None,
                })
            }
            Scheme::Sip | Scheme::Sips => {
                if rest
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b == b'<' || b == b'>')
                {
                    return Err(err("whitespace or angle bracket inside uri"));
                }
                let (main, headers) = match rest.split_once('?') {
                    Some((m, h)) => (m, Some(h.to_owned())),
                    None => (rest, None),
                };
                // The userinfo ends at the last '@' (user parts may contain ';' and escaped chars).
                let (userinfo, hostpart) = match memchr::memrchr(b'@', main.as_bytes()) {
                    Some(i) => (Some(&main[..i]), &main[i + 1..]),
                    None => (None, main),
                };
                let (user, password) = match userinfo {
                    Some(ui) => match ui.split_once(':') {
                        Some((u, p)) => (Some(u.to_owned()), Some(p.to_owned())),
                        None => (Some(ui.to_owned()), None),
                    },
                    None => (None, None),
                };
                if user.as_deref() == Some("") {
                    return Err(err("empty user part"));
                }
                let (hostport, params) = match hostpart.split_once(';') {
                    Some((h, p)) => (h, parse_params(p)),
                    None => (hostpart, Vec::new()),
                };
                let (host, port) =
                    split_host_port(hostport).ok_or_else(|| err("invalid host or port"))?;
                Ok(Self {
                    scheme,
                    user,
                    password,
                    host,
                    port,
                    params,
                    headers,
                })
            }
        }
    }
}

/// Splits `host[:port]`, accepting `[v6]:port`; returns None for an empty host or a bad port.
pub(crate) fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    let s = s.trim();
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &s[..end + 2];
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return None,
        };
        (host, port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b))
    {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.trim().parse::<u16>().ok()?),
        None => None,
    };
    Some((host.to_owned(), port))
}

impl FromStr for Uri {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme.as_str())?;
        if matches!(self.scheme, Scheme::Other(_)) {
            return f.write_str(&self.host);
        }
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write_params(f, &self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}
