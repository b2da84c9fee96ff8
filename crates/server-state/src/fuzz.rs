//! Property tests: the parsers of outside input (export files, HTTP replies, stored SIP messages,
//! RPC answers) never panic, and the CSV reader gives back what a writer put in.

use proptest::prelude::*;
use serde_json::json;

use crate::csv::Table;
use crate::kamailio::{TracedMsg, pair_register_attempts, parse_contacts, parse_dispatcher};
use crate::sipscan;

fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\n', '\r']) || f.trim() != f || f.starts_with('#') {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_string()
    }
}

proptest! {
    #[test]
    fn csv_never_panics(text in "\\PC*|[a-z,\"\r\n#]*") {
        let _ = Table::parse(std::path::Path::new("x.csv"), &text);
    }

    #[test]
    fn csv_round_trips(rows in prop::collection::vec(prop::collection::vec("[a-z0-9 ,\"\n#é]{0,8}", 3), 1..6)) {
        let mut text = String::from("a,b,c\n");
        for r in &rows {
            text.push_str(&r.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
            text.push('\n');
        }
        let table = Table::parse(std::path::Path::new("x.csv"), &text).unwrap();
        prop_assert_eq!(table.records.len(), rows.len());
        for (rec, want) in table.records.iter().zip(&rows) {
            for (i, f) in want.iter().enumerate() {
                prop_assert_eq!(rec.get(i), f.trim());
            }
        }
    }

    #[test]
    fn http_replies_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300), head in "HTTP/1\\.[01] [0-9]{3} [A-Z]{0,3}\r\n(Content-Length: [0-9]{1,4}\r\n|Transfer-Encoding: chunked\r\n)?\r\n") {
        let mut buf = head.into_bytes();
        buf.extend_from_slice(&bytes);
        let _ = crate::kamailio::rpc_complete_response(&buf);
        let _ = crate::kamailio::rpc_finish_at_eof(&buf);
        let _ = crate::kamailio::rpc_finish_at_eof(&bytes);
    }

    #[test]
    fn stored_sip_messages_never_panic(msg in "\\PC*|(REGISTER|SIP/2\\.0) [a-zé0-9 ]*\r\n(To|t|CSeq|Authorization): [<>@:;\"=a-zé0-9 ,]*\r\n\r\n") {
        let _ = sipscan::start_line(&msg);
        let _ = sipscan::cseq(&msg);
        let _ = sipscan::auth_username(&msg);
        if let Some(v) = sipscan::header(&msg, "To", Some("t")) {
            let _ = sipscan::uri_user(v);
        }
        let t = TracedMsg { call_id: "c".into(), at: chrono::DateTime::UNIX_EPOCH, source: String::new(), msg };
        let _ = pair_register_attempts("alice", &[t]);
    }

    #[test]
    fn rpc_answers_never_panic(expires in any::<i64>(), modified in any::<i64>(), flags in "\\PC{0,3}", n1 in "\\PC{0,6}", n2 in "\\PC{0,6}", id in any::<u64>()) {
        let now = chrono::Utc::now();
        let v = json!({"Contacts": [{"Contact": {"Address": n1, "Expires": expires, "Last-Modified": modified, "Socket": flags, "Received": n2}}]});
        let _ = parse_contacts("alice", &v, now);
        let d = json!({"RECORDS": [{"SET": {"ID": id, "TARGETS": [
            {"DEST": {"URI": "sip:a", "FLAGS": flags, "ATTRS": {"BODY": format!("name={n1}")}}},
            {"DEST": {"URI": "sip:b", "FLAGS": "IP", "ATTRS": {"BODY": format!("name={n2}")}}}]}}]});
        let _ = parse_dispatcher(&d, &Default::default());
    }
}
