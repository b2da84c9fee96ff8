//! Calls through the lab (echo, trunk, local) and their accounting rows, from test_data/calls.tsv.

use std::time::Duration;

use testlab::Lab;

use crate::{data_lines, wait_until};

#[test]
fn calls_get_the_expected_answer_and_accounting_rows() {
    let lab = Lab::start().unwrap();
    let phone = lab.sipp_phone().unwrap();
    for user in ["alice", "carol"] {
        let acc = lab.account(user).unwrap();
        let out = lab
            .sipp_register_contact(&acc.user, &acc.password, &phone.contact(user))
            .unwrap();
        assert_eq!(
            out.final_status,
            Some(200),
            "register {user}: {}",
            out.trace
        );
    }
    let mut failures = Vec::new();
    for line in data_lines("calls.tsv") {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (caller, target, status, route, dst_user) = (f[0], f[1], f[2], f[3], f[4]);
        let acc = lab.account(caller).unwrap();
        let out = lab.sipp_call(&acc.user, &acc.password, target).unwrap();
        let want: u16 = status.parse().unwrap();
        if out.final_status != Some(want) || out.success != (want == 200) {
            failures.push(format!(
                "{line}: got {:?} success={}",
                out.final_status, out.success
            ));
            continue;
        }
        let call_id = out.call_id.clone().unwrap();
        // acc and the dialog CDR are written while or just after the final
        // response goes out: SIPp may exit first.
        let written = |sql: &str| {
            let mut v = String::new();
            wait_until(Duration::from_secs(3), || {
                v = lab.sql(sql).unwrap();
                !v.is_empty()
            });
            v
        };
        let row = written(&format!(
            "SELECT sip_code, route, src_user, dst_ouser, dst_user FROM acc \
             WHERE method='INVITE' AND callid='{call_id}'"
        ));
        let expected = format!("{status}|{route}|{caller}|{target}|{dst_user}");
        if row != expected {
            failures.push(format!("{line}: acc row {row:?}, expected {expected:?}"));
        }
        let cdr = written(&format!(
            "SELECT route, caller, dialed, duration > 0 FROM acc_cdrs WHERE callid='{call_id}'"
        ));
        let expected = format!("{route}|{caller}|{target}|{}", i32::from(want == 200));
        if cdr != expected {
            failures.push(format!("{line}: cdr {cdr:?}, expected {expected:?}"));
        }
        if want == 200 {
            let bye = written(&format!(
                "SELECT sip_code FROM acc WHERE method='BYE' AND callid='{call_id}'"
            ));
            if bye != "200" {
                failures.push(format!("{line}: BYE acc row {bye:?}"));
            }
        }
        let want_missed = if want == 480 { "480" } else { "" };
        let sql = format!("SELECT sip_code FROM missed_calls WHERE callid='{call_id}'");
        let missed = if want == 480 {
            written(&sql)
        } else {
            lab.sql(&sql).unwrap()
        };
        if missed != want_missed {
            failures.push(format!("{line}: missed_calls {missed:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let log = lab.kamailio_log();
    assert!(
        log.contains("LAB: INVITE to 1002 (bob): not registered -> 480"),
        "{log}"
    );
}

#[test]
fn echo_service_and_gateway_send_rtp_back() {
    let lab = Lab::start().unwrap();
    for key in ["LAB_ECHO_MEDIA_PORT", "LAB_GW_MEDIA_PORT"] {
        let port: u16 = crate::env(&lab, key).parse().unwrap();
        let sock = std::net::UdpSocket::bind(("127.0.0.1", 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        sock.connect(("127.0.0.1", port)).unwrap();
        // An RTP header (RFC 3550 5.1: V=2, PT 0, seq 7) and 160 bytes of PCMU.
        let mut packet = vec![0x80, 0x00, 0x00, 0x07, 0, 0, 0, 160, 0, 0, 0, 42];
        packet.extend(std::iter::repeat_n(0xffu8, 160));
        sock.send(&packet).unwrap();
        let mut buf = [0u8; 2048];
        let n = sock
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("{key}: no echo: {e}"));
        assert_eq!(&buf[..n], &packet[..], "{key}");
    }
}
