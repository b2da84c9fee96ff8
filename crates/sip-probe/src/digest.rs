//! HTTP digest for SIP (RFC 2617, RFC 7616, RFC 8760): MD5 and SHA-256 (and their -sess
//! variants), qop=auth or no qop. Pure functions, tested with the RFC vectors.

use crate::{Error, Result};
use md5::{Digest as _, Md5};
use sha2::Sha256;
use sip_message::DigestChallenge;

/// The hash named by the challenge's `algorithm` (absent means MD5, RFC 7616 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Algorithm {
    /// Reads the `algorithm` token.
    pub fn from_token(token: Option<&str>) -> Result<Self> {
        match token.map(str::to_ascii_uppercase).as_deref() {
            None | Some("MD5") => Ok(Self::Md5),
            Some("MD5-SESS") => Ok(Self::Md5Sess),
            Some("SHA-256") => Ok(Self::Sha256),
            Some("SHA-256-SESS") => Ok(Self::Sha256Sess),
            Some(other) => Err(Error::Digest(format!("unsupported algorithm {other}"))),
        }
    }

    fn token(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Md5Sess => "MD5-sess",
            Self::Sha256 => "SHA-256",
            Self::Sha256Sess => "SHA-256-sess",
        }
    }

    fn hash(self, data: &str) -> String {
        let bytes: Vec<u8> = match self {
            Self::Md5 | Self::Md5Sess => Md5::digest(data.as_bytes()).to_vec(),
            Self::Sha256 | Self::Sha256Sess => Sha256::digest(data.as_bytes()).to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn is_sess(self) -> bool {
        matches!(self, Self::Md5Sess | Self::Sha256Sess)
    }
}

/// Everything needed to compute one response. `password` is borrowed only for the computation.
#[derive(Clone, Copy)]
pub struct DigestInput<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub realm: &'a str,
    pub nonce: &'a str,
    pub method: &'a str,
    pub uri: &'a str,
    pub algorithm: Algorithm,
    /// `Some("auth")` or `None` (RFC 2069 compatibility).
    pub qop: Option<&'a str>,
    pub nc: u32,
    pub cnonce: &'a str,
}

impl std::fmt::Debug for DigestInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestInput")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .field("method", &self.method)
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

/// The `response` value (RFC 7616 §3.4.1).
pub fn response(i: &DigestInput<'_>) -> String {
    let a = i.algorithm;
    let mut ha1 = a.hash(&format!("{}:{}:{}", i.username, i.realm, i.password));
    if a.is_sess() {
        ha1 = a.hash(&format!("{ha1}:{}:{}", i.nonce, i.cnonce));
    }
    let ha2 = a.hash(&format!("{}:{}", i.method, i.uri));
    match i.qop {
        Some(qop) => a.hash(&format!(
            "{ha1}:{}:{:08x}:{}:{qop}:{ha2}",
            i.nonce, i.nc, i.cnonce
        )),
        None => a.hash(&format!("{ha1}:{}:{ha2}", i.nonce)),
    }
}

/// Picks the challenge to answer: SHA-256 before MD5 (RFC 8760 §2.4), only Digest ones we support.
pub fn pick_challenge(challenges: &[DigestChallenge]) -> Option<&DigestChallenge> {
    let supported = |c: &&DigestChallenge| {
        c.is_digest() && Algorithm::from_token(c.algorithm.as_deref()).is_ok()
    };
    challenges
        .iter()
        .filter(supported)
        .find(|c| {
            matches!(
                Algorithm::from_token(c.algorithm.as_deref()),
                Ok(Algorithm::Sha256 | Algorithm::Sha256Sess)
            )
        })
        .or_else(|| challenges.iter().find(supported))
}

/// Builds the Authorization / Proxy-Authorization header value answering `challenge`.
pub fn authorization(
    challenge: &DigestChallenge,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
    cnonce: &str,
) -> Result<String> {
    let algorithm = Algorithm::from_token(challenge.algorithm.as_deref())?;
    let realm = challenge
        .realm
        .as_deref()
        .ok_or_else(|| Error::Digest("challenge has no realm".into()))?;
    let nonce = challenge
        .nonce
        .as_deref()
        .ok_or_else(|| Error::Digest("challenge has no nonce".into()))?;
    let qop = if challenge.qop.is_empty() {
        None
    } else if challenge.qop.iter().any(|q| q.eq_ignore_ascii_case("auth")) {
        Some("auth")
    } else {
        return Err(Error::Digest(format!(
            "no supported qop in {:?}",
            challenge.qop
        )));
    };
    let input = DigestInput {
        username,
        password,
        realm,
        nonce,
        method,
        uri,
        algorithm,
        qop,
        nc,
        cnonce,
    };
    let resp = response(&input);
    let mut v = format!(
        "Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{resp}\", algorithm={}",
        algorithm.token()
    );
    if let Some(q) = qop {
        v.push_str(&format!(", qop={q}, nc={nc:08x}, cnonce=\"{cnonce}\""));
    }
    if let Some(o) = &challenge.opaque {
        v.push_str(&format!(", opaque=\"{o}\""));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7616 §3.9.1 (MD5 and SHA-256) and RFC 2617 §3.5 vectors.
    #[test]
    fn rfc_vectors() {
        let rfc7616 = DigestInput {
            username: "Mufasa",
            password: "Circle of Life",
            realm: "http-auth@example.org",
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            method: "GET",
            uri: "/dir/index.html",
            algorithm: Algorithm::Md5,
            qop: Some("auth"),
            nc: 1,
            cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        };
        let cases = [
            (rfc7616, "8ca523f5e9506fed4657c9700eebdbec"),
            (
                DigestInput {
                    algorithm: Algorithm::Sha256,
                    ..rfc7616
                },
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
            (
                DigestInput {
                    username: "Mufasa",
                    password: "Circle Of Life",
                    realm: "testrealm@host.com",
                    nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
                    method: "GET",
                    uri: "/dir/index.html",
                    algorithm: Algorithm::Md5,
                    qop: Some("auth"),
                    nc: 1,
                    cnonce: "0a4f113b",
                },
                "6629fae49393a05397450978507c4ef1",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(response(&input), want, "{input:?}");
        }
    }

    #[test]
    fn header_value_and_choice() {
        let parse = |v: &str| DigestChallenge::parse(v, "WWW-Authenticate").expect("challenge");
        let md5 = parse(r#"Digest realm="r", nonce="n", qop="auth,auth-int", opaque="o""#);
        let sha = parse(r#"Digest realm="r", nonce="n", qop="auth", algorithm=SHA-256"#);
        let odd = parse(r#"Digest realm="r", nonce="n", algorithm=SHA-512-256"#);
        let both = [md5.clone(), sha.clone()];
        assert_eq!(pick_challenge(&both), Some(&sha));
        assert_eq!(pick_challenge(std::slice::from_ref(&odd)), None);
        let v = authorization(&md5, "alice", "pw", "REGISTER", "sip:127.0.0.1", 1, "abc")
            .expect("value");
        assert!(v.contains("qop=auth, nc=00000001, cnonce=\"abc\""), "{v}");
        assert!(v.contains("opaque=\"o\""));
        assert!(!v.contains("pw\""));
        let no_realm = parse(r#"Digest nonce="n""#);
        assert!(authorization(&no_realm, "a", "b", "REGISTER", "sip:x", 1, "c").is_err());
        let int_only = parse(r#"Digest realm="r", nonce="n", qop="auth-int""#);
        assert!(authorization(&int_only, "a", "b", "REGISTER", "sip:x", 1, "c").is_err());
    }
}
