//! The HEPv3 codec: round trips and every malformed case, and the TCP framer.

use sip_events::hep::{self, Frame, Framer, HepError, HepPacket};
use std::net::{IpAddr, Ipv6Addr};

const SIP: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n";

fn sample() -> HepPacket<'static> {
    HepPacket {
        ip_family: Some(2),
        ip_proto: Some(17),
        src_ip: Some("10.1.2.3".parse().unwrap()),
        dst_ip: Some("10.9.8.7".parse().unwrap()),
        src_port: Some(5060),
        dst_port: Some(5098),
        ts_sec: Some(1_700_000_000),
        ts_usec: Some(123_456),
        proto_type: Some(1),
        capture_id: Some(2001),
        has_auth_key: false,
        correlation_id: Some(b"corr-1"),
        payload: SIP,
    }
}

/// Chunk header + value, by hand (to build packets the encoder refuses to make).
fn chunk(kind: u16, value: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0];
    v.extend_from_slice(&kind.to_be_bytes());
    v.extend_from_slice(&((value.len() + 6) as u16).to_be_bytes());
    v.extend_from_slice(value);
    v
}

fn packet(chunks: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = chunks.concat();
    let mut v = b"HEP3".to_vec();
    v.extend_from_slice(&((body.len() + 6) as u16).to_be_bytes());
    v.extend_from_slice(&body);
    v
}

#[test]
fn round_trip_ipv4() {
    let p = sample();
    let bytes = hep::encode(&p).unwrap();
    assert_eq!(&bytes[..4], b"HEP3");
    assert_eq!(
        usize::from(u16::from_be_bytes([bytes[4], bytes[5]])),
        bytes.len()
    );
    let back = hep::decode(&bytes).unwrap();
    assert_eq!(back, p);
    assert_eq!(back.src().unwrap().to_string(), "10.1.2.3:5060");
    assert_eq!(back.transport(), Some("udp"));
    assert_eq!(back.timestamp_micros(), Some(1_700_000_000_123_456));
}

#[test]
fn round_trip_ipv6() {
    let p = HepPacket {
        ip_family: Some(10),
        ip_proto: Some(6),
        src_ip: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        dst_ip: Some("2001:db8::5".parse().unwrap()),
        src_port: Some(5061),
        dst_port: Some(40000),
        payload: SIP,
        ..HepPacket::default()
    };
    let bytes = hep::encode(&p).unwrap();
    let back = hep::decode(&bytes).unwrap();
    assert_eq!(back.src().unwrap().to_string(), "[::1]:5061");
    assert_eq!(back.dst().unwrap().to_string(), "[2001:db8::5]:40000");
    assert_eq!(back.transport(), Some("tcp"));
    assert_eq!(back.payload, SIP);
}

#[test]
fn auth_key_value_is_never_kept_nor_encoded() {
    let bytes = packet(&[chunk(14, b"s3cret-key"), chunk(15, SIP)]);
    let p = hep::decode(&bytes).unwrap();
    assert!(p.has_auth_key);
    assert!(!format!("{p:?}").contains("s3cret"));
    let again = hep::encode(&p).unwrap();
    assert!(!again.windows(6).any(|w| w == b"s3cret"));
}

#[test]
fn vendor_and_unknown_chunks_are_skipped() {
    let mut vendor = chunk(15, b"not the payload");
    vendor[1] = 0x21; // vendor 0x0021
    let bytes = packet(&[vendor, chunk(99, b"??"), chunk(15, SIP)]);
    assert_eq!(hep::decode(&bytes).unwrap().payload, SIP);
}

#[test]
fn malformed_packets_get_a_clear_error() {
    let good = hep::encode(&sample()).unwrap();
    // Truncated header.
    assert!(matches!(
        hep::decode(b"HEP"),
        Err(HepError::Truncated { needed: 6, got: 3 })
    ));
    assert!(matches!(hep::decode(&[]), Err(HepError::Truncated { .. })));
    // Bad magic (a HEPv2 packet starts with version 2).
    let mut v2 = good.clone();
    v2[..4].copy_from_slice(&[2, 16, 2, 17]);
    let e = hep::decode(&v2).unwrap_err();
    assert!(matches!(e, HepError::BadMagic(_)));
    assert!(e.to_string().contains("not a HEPv3 packet"), "{e}");
    // Cut short: the header promises more than the datagram holds.
    let e = hep::decode(&good[..good.len() - 10]).unwrap_err();
    assert!(matches!(e, HepError::Truncated { .. }), "{e}");
    // Longer than declared.
    let mut long = good.clone();
    long.extend_from_slice(b"junk");
    assert!(matches!(
        hep::decode(&long),
        Err(HepError::LengthMismatch { .. })
    ));
    // Declared length below the header.
    let mut tiny = good.clone();
    tiny[4..6].copy_from_slice(&3u16.to_be_bytes());
    assert!(matches!(
        hep::decode(&tiny),
        Err(HepError::LengthMismatch { declared: 3, .. })
    ));
    // A chunk running past the packet.
    let mut beyond = packet(&[chunk(15, SIP)]);
    beyond[10..12].copy_from_slice(&5000u16.to_be_bytes());
    let e = hep::decode(&beyond).unwrap_err();
    assert!(
        matches!(
            e,
            HepError::ChunkBeyondPacket {
                chunk_type: 15,
                length: 5000,
                ..
            }
        ),
        "{e}"
    );
    // A zero-length chunk (would loop forever if trusted).
    let mut zero = packet(&[chunk(15, SIP)]);
    zero[10..12].copy_from_slice(&0u16.to_be_bytes());
    assert!(matches!(
        hep::decode(&zero),
        Err(HepError::ChunkTooShort { length: 0, .. })
    ));
    // A chunk header cut in the middle.
    let mut cut = packet(&[chunk(15, SIP)]);
    cut.extend_from_slice(&[0, 0, 0]);
    let n = cut.len() as u16;
    cut[4..6].copy_from_slice(&n.to_be_bytes());
    assert!(matches!(hep::decode(&cut), Err(HepError::Truncated { .. })));
    // No payload.
    let e = hep::decode(&packet(&[chunk(1, &[2]), chunk(7, &[0x13, 0xc4])])).unwrap_err();
    assert_eq!(e, HepError::MissingPayload);
    assert!(e.to_string().contains("no payload"));
    // Compressed payload only: said so, not "missing".
    let e = hep::decode(&packet(&[chunk(16, b"\x1f\x8b...")])).unwrap_err();
    assert_eq!(e, HepError::CompressedPayload);
    assert!(e.to_string().contains("compressed"), "{e}");
    // A fixed-size chunk of the wrong size.
    let e = hep::decode(&packet(&[chunk(3, &[1, 2, 3]), chunk(15, SIP)])).unwrap_err();
    assert!(
        matches!(
            e,
            HepError::BadChunkValue {
                chunk_type: 3,
                expected: 4,
                got: 3,
                ..
            }
        ),
        "{e}"
    );
    let e = hep::decode(&packet(&[chunk(5, &[0; 4]), chunk(15, SIP)])).unwrap_err();
    assert!(
        matches!(
            e,
            HepError::BadChunkValue {
                chunk_type: 5,
                expected: 16,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn encoder_refuses_oversized_packets() {
    let big = vec![b'x'; 70_000];
    let p = HepPacket {
        payload: &big,
        ..HepPacket::default()
    };
    assert!(matches!(hep::encode(&p), Err(HepError::TooLarge(_))));
}

#[test]
fn every_prefix_of_a_packet_is_refused_without_panic() {
    let good = hep::encode(&sample()).unwrap();
    for n in 0..good.len() {
        assert!(hep::decode(&good[..n]).is_err(), "prefix {n} accepted");
    }
}

#[test]
fn framer_splits_a_stream_into_packets() {
    let a = hep::encode(&sample()).unwrap();
    let b = hep::encode(&HepPacket {
        payload: b"second",
        ..sample()
    })
    .unwrap();
    // Two packets and half of a third in one read, the rest in the next.
    let mut stream = a.clone();
    stream.extend_from_slice(&b);
    stream.extend_from_slice(&a[..10]);
    let mut f = Framer::new();
    f.push(&stream);
    let mut got = Vec::new();
    loop {
        match f.next_frame() {
            Frame::Packet(n) => {
                got.push(hep::decode(&f.buffer()[..n]).unwrap().payload.to_vec());
                f.consume(n);
            }
            Frame::Garbage(n) => panic!("garbage {n}"),
            Frame::NeedMore => break,
        }
    }
    assert_eq!(got, vec![SIP.to_vec(), b"second".to_vec()]);
    assert_eq!(f.len(), 10);
    f.push(&a[10..]);
    assert_eq!(f.next_frame(), Frame::Packet(a.len()));

    // Byte by byte: nothing until the last byte.
    let mut f = Framer::new();
    for (i, byte) in a.iter().enumerate() {
        f.push(&[*byte]);
        let expect = if i + 1 == a.len() {
            Frame::Packet(a.len())
        } else {
            Frame::NeedMore
        };
        assert_eq!(f.next_frame(), expect, "after {} bytes", i + 1);
    }
}

#[test]
fn framer_skips_garbage_up_to_the_next_magic() {
    let a = hep::encode(&sample()).unwrap();
    let mut stream = b"GET / HTTP/1.1\r\n".to_vec();
    stream.extend_from_slice(&a);
    assert_eq!(hep::frame(&stream), Frame::Garbage(16));
    assert_eq!(hep::frame(&stream[16..]), Frame::Packet(a.len()));
    // Garbage with no magic keeps the last 3 bytes (a magic may be split), and makes progress.
    assert_eq!(hep::frame(b"xxxxxxHE"), Frame::Garbage(5));
    assert_eq!(hep::frame(b"HE"), Frame::NeedMore);
    assert_eq!(hep::frame(b"Q"), Frame::Garbage(1));
    // A header declaring less than itself is garbage, not a packet of length 0.
    assert_eq!(hep::frame(b"HEP3\x00\x00rest"), Frame::Garbage(4));
}
