//! SDP parse and print.

use sip_message::sdp::{Direction, SessionDescription};

#[test]
fn offer_prints_and_parses_back() {
    let offer = SessionDescription::audio_offer(
        "127.0.0.1",
        40000,
        42,
        &[(0, "PCMU/8000"), (8, "PCMA/8000")],
    );
    let text = offer.to_string();
    let (back, diags) = SessionDescription::parse(text.as_bytes());
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(back, offer);
    let (i, audio) = back.audio().expect("audio");
    assert_eq!(audio.port, 40000);
    assert_eq!(audio.formats, vec!["0", "8"]);
    assert_eq!(audio.rtpmaps()[1].encoding, "PCMA");
    assert_eq!(back.media_connection(i).expect("c=").address, "127.0.0.1");
    assert_eq!(back.media_direction(i), Direction::SendRecv);
}

#[test]
fn sdp_table() {
    // input, media count, first media connection, direction, diagnostic count
    let cases: &[(&str, usize, Option<&str>, Direction, usize)] = &[
        (
            "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n",
            1,
            Some("10.0.0.1"),
            Direction::SendOnly,
            0,
        ),
        (
            "v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\na=inactive\nm=audio 4000 RTP/AVP 0\nc=IN IP4 192.168.1.10/127\n",
            1,
            Some("192.168.1.10"),
            Direction::Inactive,
            0,
        ),
        (
            "v=0\r\nm=audio 4000 RTP/AVP 0\r\n",
            1,
            None,
            Direction::SendRecv,
            1,
        ),
        (
            "v=0\r\nm=audio notaport RTP/AVP 0\r\nc=IN IP4 1.2.3.4\r\n",
            0,
            None,
            Direction::SendRecv,
            1,
        ),
        ("garbage\r\n", 0, None, Direction::SendRecv, 2),
    ];
    for (input, media, conn, dir, ndiag) in cases {
        let (s, d) = SessionDescription::parse(input.as_bytes());
        assert_eq!(s.media.len(), *media, "{input:?}");
        assert_eq!(
            s.media_connection(0).map(|c| c.address).as_deref(),
            *conn,
            "{input:?}"
        );
        assert_eq!(s.media_direction(0), *dir, "{input:?}");
        assert_eq!(d.len(), *ndiag, "{input:?}: {d:?}");
    }
}
