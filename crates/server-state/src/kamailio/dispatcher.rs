//! Trunks from the dispatcher module: its sets, destinations and their state.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{DestinationState, Trunk, TrunkDestination};

/// Trunks from a `dispatcher.list` answer; FLAGS' first letter is the state (A/I/D/T), the
/// second whether the destination is probed (P) or not yet/never (X).
pub(crate) fn parse_dispatcher(v: &Value, prefixes: &BTreeMap<u32, Vec<String>>) -> Vec<Trunk> {
    let mut out = Vec::new();
    let Some(records) = v.get("RECORDS").and_then(Value::as_array) else {
        return Vec::new();
    };
    for rec in records {
        let set = rec.get("SET").unwrap_or(rec);
        let id = set.get("ID").and_then(Value::as_u64).unwrap_or(0);
        let mut destinations = Vec::new();
        for t in set
            .get("TARGETS")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let dest = t.get("DEST").unwrap_or(t);
            let uri = dest
                .get("URI")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let flags = dest.get("FLAGS").and_then(Value::as_str).unwrap_or("");
            let name = dest
                .get("ATTRS")
                .and_then(|a| a.get("BODY"))
                .and_then(Value::as_str)
                .and_then(|body| {
                    body.split(';').find_map(|kv| {
                        let (k, v) = kv.split_once('=')?;
                        (k.trim() == "name").then(|| v.trim().to_string())
                    })
                })
                .unwrap_or_else(|| uri.clone());
            let (state, last_probe) = flags_state(flags, dest.get("LATENCY"));
            destinations.push(TrunkDestination {
                uri,
                state,
                last_probe,
                name,
            });
        }
        let name = set_name(id, &destinations);
        let id32 = u32::try_from(id).unwrap_or(u32::MAX);
        out.push((
            id,
            Trunk {
                id: id.to_string(),
                name,
                destinations,
                prefixes: prefixes.get(&id32).cloned().unwrap_or_default(),
            },
        ));
    }
    // Kamailio lists sets newest first; report them in id order.
    out.sort_by_key(|(id, _)| *id);
    out.into_iter().map(|(_, t)| t).collect()
}

fn flags_state(flags: &str, latency: Option<&Value>) -> (DestinationState, Option<String>) {
    let mut chars = flags.chars();
    let state = match chars.next() {
        Some('A') => DestinationState::Active,
        Some('I') => DestinationState::Inactive,
        Some('D') => DestinationState::Disabled,
        _ => DestinationState::Probing,
    };
    let probed = chars.next() == Some('P');
    let mut words = match (state, probed) {
        (DestinationState::Disabled, _) => "disabled by the administrator, not probed".to_string(),
        (_, false) => "not probed yet".to_string(),
        (DestinationState::Active, true) => "answered the last OPTIONS probe".to_string(),
        (DestinationState::Inactive, true) => {
            "did not answer the OPTIONS probes (timeout or error reply)".to_string()
        }
        (_, true) => "failing OPTIONS probes, retrying".to_string(),
    };
    if let Some(avg) = latency.and_then(|l| l.get("AVG")).and_then(Value::as_f64) {
        words.push_str(&format!("; average latency {avg:.0} ms"));
    }
    words.push_str(&format!(" [FLAGS {flags}]"));
    (state, Some(words))
}

/// A readable set name: the common stem of its destination names (`pstn-gw1`, `pstn-gw2` ->
/// `pstn-gw`), or `set N`.
pub(super) fn set_name(id: u64, dests: &[TrunkDestination]) -> String {
    let names: Vec<&str> = dests.iter().map(|d| d.name.as_str()).collect();
    let Some(first) = names.first() else {
        return format!("set {id}");
    };
    let mut stem = first.len();
    for n in &names[1..] {
        stem = stem.min(
            first
                .bytes()
                .zip(n.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    // Stay on a character boundary: names are the server's data, not ASCII by contract.
    while !first.is_char_boundary(stem) {
        stem -= 1;
    }
    let stem = first[..stem].trim_end_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '_');
    if stem.is_empty() || stem.starts_with("sip:") {
        format!("set {id}")
    } else {
        stem.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dispatcher_flags_and_names() {
        let v = json!({"NRSETS":2,"RECORDS":[
            {"SET":{"ID":1,"TARGETS":[
                {"DEST":{"URI":"sip:127.0.0.1:5092","FLAGS":"AP","PRIORITY":10,"ATTRS":{"BODY":"name=pstn-gw1"}}},
                {"DEST":{"URI":"sip:127.0.0.1:5094","FLAGS":"IP","PRIORITY":0,"ATTRS":{"BODY":"name=pstn-gw2;weight=1"}}}]}},
            {"SET":{"ID":2,"TARGETS":[{"DEST":{"URI":"sip:127.0.0.1:5090","FLAGS":"AX"}}]}}]});
        let prefixes = BTreeMap::from([(1, vec!["9".to_string()])]);
        let trunks = parse_dispatcher(&v, &prefixes);
        type Row<'a> = (
            String,
            String,
            Vec<(&'a str, DestinationState)>,
            Vec<String>,
        );
        let got: Vec<Row> = trunks
            .iter()
            .map(|t| {
                (
                    t.id.clone(),
                    t.name.clone(),
                    t.destinations
                        .iter()
                        .map(|d| (d.name.as_str(), d.state))
                        .collect(),
                    t.prefixes.clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "1".into(),
                    "pstn-gw".into(),
                    vec![
                        ("pstn-gw1", DestinationState::Active),
                        ("pstn-gw2", DestinationState::Inactive)
                    ],
                    vec!["9".into()]
                ),
                (
                    "2".into(),
                    "set 2".into(),
                    vec![("sip:127.0.0.1:5090", DestinationState::Active)],
                    vec![]
                ),
            ]
        );
        assert!(
            trunks[1].destinations[0]
                .last_probe
                .as_deref()
                .unwrap()
                .contains("not probed")
        );
        // Names sharing a partial multi-byte character still give a valid stem.
        let v = json!({"RECORDS":[{"SET":{"ID":3,"TARGETS":[
            {"DEST":{"URI":"sip:a","FLAGS":"AP","ATTRS":{"BODY":"name=gé1"}}},
            {"DEST":{"URI":"sip:b","FLAGS":"AP","ATTRS":{"BODY":"name=gè2"}}}]}}]});
        assert_eq!(parse_dispatcher(&v, &prefixes)[0].name, "g");
    }
}
