//! Registrations from usrloc (`ul.lookup`/`ul.dump`): contacts and where each one came from.

use sip_message::{uri_hostport, uri_param};
use std::collections::HashSet;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use crate::{Registration, Transport};

/// Registrations from an `ul.lookup` answer (`{"AoR", "Contacts":[{"Contact":{...}}]}`).
pub(crate) fn parse_contacts(user: &str, v: &Value, now: DateTime<Utc>) -> Vec<Registration> {
    let mut out = Vec::new();
    let Some(contacts) = v.get("Contacts").and_then(Value::as_array) else {
        return out;
    };
    for c in contacts {
        let c = c.get("Contact").unwrap_or(c);
        let field = |k: &str| {
            c.get(k)
                .and_then(Value::as_str)
                .filter(|s| *s != "[not set]")
                .unwrap_or("")
                .to_string()
        };
        let expires_at = match c.get("Expires") {
            Some(Value::Number(n)) => match n
                .as_i64()
                .filter(|s| *s > 0)
                .and_then(chrono::Duration::try_seconds)
                .and_then(|d| now.checked_add_signed(d))
            {
                Some(t) => t,
                None => continue,
            },
            // "permanent" bindings never expire; "expired"/"deleted" are gone.
            Some(Value::String(s)) if s == "permanent" => DateTime::<Utc>::MAX_UTC,
            _ => continue,
        };
        let registered_at = c
            .get("Last-Modified")
            .and_then(Value::as_i64)
            .and_then(|t| Utc.timestamp_opt(t, 0).single())
            .unwrap_or(now);
        let contact = field("Address");
        let (transport, source) = binding_origin(&contact, &field("Received"), &field("Socket"));
        out.push(Registration {
            user: user.to_string(),
            contact,
            source,
            transport,
            user_agent: field("User-Agent"),
            expires_at,
            registered_at,
            call_id: field("Call-ID"),
            origin: None,
        });
    }
    out
}

/// A binding's transport (from the socket it came in on, else the contact's `transport=`) and
/// where it really came from (the `received` address, else the contact's host and port).
pub(super) fn binding_origin(contact: &str, received: &str, socket: &str) -> (Transport, String) {
    let transport = socket
        .split_once(':')
        .map(|(p, _)| Transport::parse(p))
        .filter(|t| *t != Transport::Unknown)
        .or_else(|| uri_param(contact, "transport").map(Transport::parse))
        .unwrap_or(Transport::Udp);
    let source = if received.is_empty() {
        uri_hostport(contact).unwrap_or_default()
    } else {
        uri_hostport(received).unwrap_or_else(|| received.to_string())
    };
    (transport, source)
}

/// Every `AoR` string in a `ul.dump` answer (brief or full), without any `@domain`.
pub(super) fn collect_aors(v: &Value, out: &mut HashSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, val) in map {
                if k == "AoR" {
                    if let Some(s) = val.as_str() {
                        let user = s.split('@').next().unwrap_or(s);
                        out.insert(user.to_string());
                    }
                } else {
                    collect_aors(val, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_aors(i, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn contacts_from_ul_lookup() {
        let now = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        let v = json!({"AoR":"alice","Contacts":[
            {"Contact":{"Address":"sip:alice@10.0.0.5:5098;transport=tcp","Expires":3599,"Call-ID":"c1",
              "User-Agent":"PrivateGSM 1.0","Received":"[not set]","Socket":"tcp:127.0.0.1:5060","Last-Modified":1_799_999_990}},
            {"Contact":{"Address":"sip:alice@192.168.1.2:5060","Expires":"expired"}},
            {"Contact":{"Address":"sip:alice@192.168.1.2:5060","Expires":60,"Received":"sip:203.0.113.9:40000","Socket":"udp:127.0.0.1:5060"}}]});
        let regs = parse_contacts("alice", &v, now);
        assert_eq!(regs.len(), 2);
        assert_eq!(regs[0].source, "10.0.0.5:5098");
        assert_eq!(regs[0].transport, Transport::Tcp);
        assert_eq!(regs[0].expires_at, now + chrono::Duration::seconds(3599));
        assert_eq!(regs[0].registered_at.timestamp(), 1_799_999_990);
        assert_eq!(regs[1].source, "203.0.113.9:40000");
        assert_eq!(regs[1].transport, Transport::Udp);
    }
}
