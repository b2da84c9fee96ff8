//! Lenient reads of URI text, borrowed from the input: the host, a parameter, `host:port`.
//!
//! [`crate::Uri::parse`] reads a whole URI and refuses a malformed one; these helpers serve code
//! that holds a URI as text (a contact stored by a registrar, a Request-URI in a capture) and
//! wants one part of it, accepting `<...>` around it and never failing on the rest.

/// The host of a URI (`sip:alice@10.0.0.1:5060;transport=tcp` gives `10.0.0.1`): after the
/// scheme and any userinfo, up to the port, the parameters or a closing `>`. An IPv6 reference
/// (`sip:[2001:db8::1]:5060`) gives the address without its brackets. `None` without a scheme.
pub fn host_of(uri: &str) -> Option<&str> {
    let rest = uri.split_once(':').map(|(_, r)| r)?;
    let rest = &rest[..rest.find('>').unwrap_or(rest.len())];
    let rest = rest.split_once('@').map_or(rest, |(_, h)| h);
    if let Some(v6) = rest.strip_prefix('[') {
        return v6.find(']').map(|end| &v6[..end]);
    }
    let end = rest.find([':', ';', '?']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The value of the URI parameter `name` (`transport` in `<sip:a@h;transport=tcp>`), trimmed;
/// the name compares case-insensitively. `None` when absent or written without a value.
pub fn uri_param<'a>(uri: &'a str, name: &str) -> Option<&'a str> {
    let uri = uri.trim_start_matches('<').split('>').next().unwrap_or(uri);
    uri.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// `host:port` of a SIP URI as written (`sip:user@host:port;params` gives `host:port`); text
/// without a `sip:`/`sips:` scheme is read the same way. `None` when nothing is left.
pub fn uri_hostport(uri: &str) -> Option<String> {
    let uri = uri.trim().trim_start_matches('<').split('>').next()?;
    let rest = uri
        .strip_prefix("sips:")
        .or_else(|| uri.strip_prefix("sip:"))
        .unwrap_or(uri);
    let rest = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    let hp = rest.split([';', '?']).next()?;
    (!hp.is_empty()).then(|| hp.to_string())
}
