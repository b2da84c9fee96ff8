#!/usr/bin/env python3
"""Writes the seed corpus of the HEP decoder's fuzz target into corpus/decode/.

ok-* must decode to a SIP record, bad-* must be refused, stream-* are TCP streams for the framer.
"""
import os, struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "decode")
os.makedirs(OUT, exist_ok=True)

def chunk(t, v, vendor=0):
    return struct.pack(">HHH", vendor, t, len(v) + 6) + v

def packet(chunks, declared=None):
    body = b"".join(chunks)
    n = len(body) + 6 if declared is None else declared
    return b"HEP3" + struct.pack(">H", n) + body

REG = (b"REGISTER sip:example.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5098;branch=z9hG4bK1\r\n"
       b"From: <sip:alice@example.test>;tag=1\r\nTo: <sip:alice@example.test>\r\nCall-ID: c1\r\n"
       b"CSeq: 1 REGISTER\r\nUser-Agent: baresip 1.0\r\nContent-Length: 0\r\n\r\n")
INV = (b"INVITE sip:95551234@example.test SIP/2.0\r\nVia: SIP/2.0/TCP [::1]:5098;branch=z9hG4bK2\r\n"
       b"From: <sip:alice@example.test>;tag=2\r\nTo: <sip:95551234@example.test>\r\nCall-ID: c2\r\n"
       b"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
RESP = (b"SIP/2.0 503 Service Unavailable\r\nVia: SIP/2.0/UDP 127.0.0.1:5098;branch=z9hG4bK2\r\n"
        b"From: <sip:alice@example.test>;tag=2\r\nTo: <sip:95551234@example.test>;tag=9\r\nCall-ID: c2\r\n"
        b"CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")

v4 = [chunk(1, b"\x02"), chunk(2, b"\x11"), chunk(3, bytes([127, 0, 0, 1])), chunk(4, bytes([127, 0, 0, 1])),
      chunk(7, struct.pack(">H", 5098)), chunk(8, struct.pack(">H", 5060)),
      chunk(9, struct.pack(">I", 1_700_000_000)), chunk(10, struct.pack(">I", 5)),
      chunk(11, b"\x01"), chunk(12, struct.pack(">I", 2001))]
v6 = [chunk(1, b"\x0a"), chunk(2, b"\x06"), chunk(5, b"\x00" * 15 + b"\x01"), chunk(6, b"\x00" * 15 + b"\x01"),
      chunk(7, struct.pack(">H", 5098)), chunk(8, struct.pack(">H", 5060)), chunk(11, b"\x01")]

seeds = {
    "ok-register-ipv4": packet(v4 + [chunk(15, REG)]),
    "ok-invite-ipv6-tcp": packet(v6 + [chunk(15, INV)]),
    "ok-response-auth-key-correlation": packet(v4 + [chunk(14, b"key"), chunk(17, b"corr"), chunk(15, RESP)]),
    "ok-vendor-chunk": packet([chunk(15, b"vendor stuff", vendor=0x21)] + v4 + [chunk(15, REG)]),
    "bad-empty": b"",
    "bad-magic-hepv2": b"\x02\x10\x02\x11" + b"\x00" * 24 + REG,
    "bad-truncated-header": b"HEP",
    "bad-truncated-body": packet(v4 + [chunk(15, REG)])[:-20],
    "bad-length-short": packet(v4 + [chunk(15, REG)], declared=3),
    "bad-length-mismatch": packet(v4 + [chunk(15, REG)]) + b"trailing",
    "bad-chunk-beyond": packet(v4)[:-2] + b"\xff\xff",
    "bad-zero-chunk": packet([struct.pack(">HHH", 0, 15, 0)]),
    "bad-missing-payload": packet(v4),
    "bad-compressed-payload": packet(v4 + [chunk(16, b"\x1f\x8b\x08\x00")]),
    "bad-ipv4-size": packet([chunk(3, b"\x7f\x00\x01")] + [chunk(15, REG)]),
    "bad-ipv6-size": packet([chunk(5, b"\x00" * 4)] + [chunk(15, REG)]),
    "bad-chunk-header-cut": packet([chunk(15, REG), b"\x00\x00\x00"]),
    "stream-two-packets-and-a-half": packet(v4 + [chunk(15, REG)]) + packet(v6 + [chunk(15, INV)]) + packet(v4 + [chunk(15, RESP)])[:30],
    "stream-garbage-between": b"GET / HTTP/1.1\r\n\r\n" + packet(v4 + [chunk(15, REG)]) + b"HEP3\x00\x00" + packet(v4 + [chunk(15, RESP)]),
}
for name, data in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds in {OUT}")
