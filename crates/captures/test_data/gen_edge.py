#!/usr/bin/env python3
"""Generates the hand-made edge-case inputs in edge/ (deterministic; run from anywhere).

Each file exercises one thing the real recordings do not: truncation, IP fragmentation
(IPv4 and IPv6), SIP over TCP split across and packed into segments, pcapng with two
interfaces of different link types, NAT (private Contact/SDP seen from a public address),
client logs in pjsip, linphone and generic prefixed formats, and garbage.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "edge")
T0 = 1795665600  # 2026-11-26 00:00:00 UTC


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip4(src, dst, proto, payload, ident=1, frag_off=0, more=False):
    flags = (0x2000 if more else 0) | (frag_off // 8)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags, 64, proto, 0,
                      bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def v6(addr):
    import ipaddress
    return ipaddress.IPv6Address(addr).packed


def ip6(src, dst, next_hdr, payload):
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), next_hdr, 64, v6(src), v6(dst)) + payload


def udp(sport, dport, data):
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def tcp(sport, dport, seq, ack, flags, data=b""):
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + data


def eth(ip_packet, v6_=False):
    return b"\x02\0\0\0\0\x02" + b"\x02\0\0\0\0\x01" + struct.pack("!H", 0x86DD if v6_ else 0x0800) + ip_packet


def sll(ip_packet):
    # Linux cooked capture v1: packet type, ARPHRD, address length, address(8), protocol.
    return struct.pack("!HHH8sH", 0, 772, 6, b"\0" * 8, 0x0800) + ip_packet


def sll2(ip_packet):
    # Linux cooked capture v2: protocol, reserved, ifindex, ARPHRD, type, addr len, addr(8).
    return struct.pack("!HHIHBB8s", 0x0800, 0, 1, 772, 0, 6, b"\0" * 8) + ip_packet


def null_lo(ip_packet, family=2):
    return struct.pack("<I", family) + ip_packet


def pcap(path, linktype, packets, snaplen=65535):
    """packets: list of (t, frame) or (t, frame, origlen)."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype))
        for p in packets:
            t, frame = p[0], p[1]
            orig = p[2] if len(p) > 2 else len(frame)
            sec = int(t)
            usec = int(round((t - sec) * 1e6))
            f.write(struct.pack("<IIII", sec, usec, len(frame), orig) + frame)


def pad4(b):
    return b + b"\0" * ((4 - len(b) % 4) % 4)


def block(btype, body):
    length = 12 + len(body)
    return struct.pack("<II", btype, length) + body + struct.pack("<I", length)


def option(code, value):
    return struct.pack("<HH", code, len(value)) + pad4(value)


def pcapng(path, ifaces, packets):
    """ifaces: list of (linktype, tsresol_exp10); packets: list of (iface, t, frame)."""
    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    for linktype, resol in ifaces:
        opts = option(9, bytes([resol])) + option(0, b"")
        out += block(1, struct.pack("<HHI", linktype, 0, 0) + opts)
    for iface, t, frame in packets:
        resol = ifaces[iface][1]
        ts = int(round(t * 10 ** resol))
        body = struct.pack("<IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(frame), len(frame)) + pad4(frame)
        out += block(6, body)
    with open(path, "wb") as f:
        f.write(out)


def sip(start, headers, body=b""):
    lines = [start] + headers + ["Content-Length: %d" % len(body), "", ""]
    return "\r\n".join(lines).encode() + body


def sdp(addr, port=40000, pts="0 8 101", ip6_=False):
    fam = "IP6" if ip6_ else "IP4"
    text = ("v=0\r\no=- 1 1 IN %s %s\r\ns=-\r\nc=IN %s %s\r\nt=0 0\r\nm=audio %d RTP/AVP %s\r\n"
            % (fam, addr, fam, addr, port, pts))
    # Padding attributes make the INVITE larger than one MTU, so it must be fragmented.
    text += "".join("a=x-pad%02d:%s\r\n" % (i, "p" * 60) for i in range(30))
    return text.encode()


def call_msgs(caller, callee, host, cid, via_host, ip6_=False):
    frm = "<sip:%s@%s>;tag=a1" % (caller, host)
    to = "<sip:%s@%s>" % (callee, host)
    via = "SIP/2.0/UDP %s:5060;branch=z9hG4bK-%s-1" % (via_host, cid)
    common = ["Via: " + via, "From: " + frm, "To: " + to, "Call-ID: " + cid, "CSeq: 1 INVITE"]
    invite = sip("INVITE sip:%s@%s SIP/2.0" % (callee, host),
                 common + ["Contact: <sip:%s@%s:5060>" % (caller, via_host), "User-Agent: edge-gen",
                           "Content-Type: application/sdp"], sdp(via_host, ip6_=ip6_))
    trying = sip("SIP/2.0 100 Trying", common)
    ringing = sip("SIP/2.0 180 Ringing", [h if not h.startswith("To:") else h + ";tag=b2" for h in common])
    ok = sip("SIP/2.0 200 OK", [h if not h.startswith("To:") else h + ";tag=b2" for h in common]
             + ["Content-Type: application/sdp"], sdp("192.0.2.10" if not ip6_ else "2001:db8::10", 50000, "0")[:120])
    return invite, trying, ringing, ok


def fragments(payload, size):
    """Split an IP payload into (offset, chunk, more) fragments of at most size bytes (multiple of 8)."""
    out = []
    off = 0
    while off < len(payload):
        chunk = payload[off:off + size]
        out.append((off, chunk, off + size < len(payload)))
        off += size
    return out


def gen_fragmented_v4():
    inv, trying, ringing, ok = call_msgs("alice", "bob", "192.0.2.1", "frag4@edge", "192.0.2.50")
    assert len(inv) > 1500
    u = udp(5060, 5060, inv)
    frs = fragments(u, 1480)
    pkts = []
    # Fragments arrive out of order: last first.
    for i, (off, chunk, more) in enumerate(reversed(frs)):
        pkts.append((T0 + 1.000 + i * 0.0001, eth(ip4("192.0.2.50", "192.0.2.1", 17, chunk, 777, off, more))))
    t = T0 + 1.01
    for m in (trying, ringing, ok):
        pkts.append((t, eth(ip4("192.0.2.1", "192.0.2.50", 17, udp(5060, 5060, m), 900))))
        t += 0.5
    pcap(os.path.join(OUT, "fragmented_ipv4.pcap"), 1, pkts)


def gen_fragmented_v6():
    inv, trying, ringing, ok = call_msgs("alice", "bob", "[2001:db8::1]", "frag6@edge", "2001:db8::50", True)
    u = udp(5060, 5060, inv)
    pkts = []
    t = T0 + 2.0
    for off, chunk, more in fragments(u, 1232):
        frag_hdr = struct.pack("!BBHI", 17, 0, off | (1 if more else 0), 0xABCD)
        pkts.append((t, null_lo(ip6("2001:db8::50", "2001:db8::1", 44, frag_hdr + chunk), 30)))
        t += 0.0001
    for m in (trying, ringing, ok):
        t += 0.3
        pkts.append((t, null_lo(ip6("2001:db8::1", "2001:db8::50", 17, udp(5060, 5060, m)), 30)))
    # BSD loopback (DLT_NULL) with AF_INET6 = 30 (macOS).
    pcap(os.path.join(OUT, "fragmented_ipv6_null.pcap"), 0, pkts)


def gen_tcp():
    cli, srv = ("10.0.0.5", 40001), ("10.0.0.1", 5060)
    cid = "tcp@edge"
    via = "SIP/2.0/TCP 10.0.0.5:40001;branch=z9hG4bK-tcp-1"
    common = ["Via: " + via, "From: <sip:carol@example.org>;tag=c1", "To: <sip:1004@example.org>",
              "Call-ID: " + cid, "CSeq: 1 INVITE"]
    invite = sip("INVITE sip:1004@example.org;transport=tcp SIP/2.0",
                 common + ["Contact: <sip:carol@10.0.0.5:40001;transport=tcp>", "Content-Type: application/sdp"],
                 sdp("10.0.0.5")[:200])
    tagged = [h + ";tag=d4" if h.startswith("To:") else h for h in common]
    trying = sip("SIP/2.0 100 Trying", common)
    ringing = sip("SIP/2.0 180 Ringing", tagged)
    busy = sip("SIP/2.0 486 Busy Here", tagged + ["Reason: Q.850;cause=17;text=\"User busy\""])
    ack = sip("ACK sip:1004@example.org;transport=tcp SIP/2.0",
              [via.join(["Via: ", ""]), "From: <sip:carol@example.org>;tag=c1", "To: <sip:1004@example.org>;tag=d4",
               "Call-ID: " + cid, "CSeq: 1 ACK"])
    pkts = []
    t = T0 + 3.0
    cseq, sseq = 1000, 5000

    def c2s(data, flags=0x18, seq=None):
        nonlocal cseq, t
        s = cseq if seq is None else seq
        pkts.append((t, sll(ip4(cli[0], srv[0], 6, tcp(cli[1], srv[1], s, sseq, flags, data)))))
        if seq is None:
            cseq += len(data) + (1 if flags & 0x03 else 0)
        t += 0.01

    def s2c(data, flags=0x18):
        nonlocal sseq, t
        pkts.append((t, sll(ip4(srv[0], cli[0], 6, tcp(srv[1], cli[1], sseq, cseq, flags, data)))))
        sseq += len(data) + (1 if flags & 0x03 else 0)
        t += 0.01

    c2s(b"", 0x02)  # SYN
    s2c(b"", 0x12)  # SYN-ACK
    c2s(b"", 0x10)  # ACK
    # INVITE in three segments; the third is sent before the second (out of order),
    # and the first is retransmitted.
    a, b, c = invite[:300], invite[300:420], invite[420:]
    base = cseq
    c2s(a)
    pkts.append((t, sll(ip4(cli[0], srv[0], 6, tcp(cli[1], srv[1], base + len(a) + len(b), sseq, 0x18, c)))))
    t += 0.01
    c2s(b)
    cseq = base + len(invite)
    c2s(a, seq=base)  # retransmitted first segment: must not be delivered twice
    # 100 and 180 packed into one segment, then a CRLF keep-alive and the 486.
    s2c(trying + ringing)
    t += 0.8
    s2c(b"\r\n\r\n" + busy)
    c2s(ack)
    c2s(b"", 0x11)  # FIN
    pcap(os.path.join(OUT, "tcp_split_sll.pcap"), 113, pkts)


def gen_two_ifaces():
    # A registration rejected with 403 after a digest challenge; requests on an Ethernet
    # interface (microsecond stamps), responses on a raw IPv4 interface (nanosecond stamps).
    cid = "twoif@edge"
    via = "SIP/2.0/UDP 198.51.100.7:5070;branch=z9hG4bK-r%d"
    base = ["From: <sip:dave@example.org>;tag=r1", "To: <sip:dave@example.org>", "Call-ID: " + cid]
    reg1 = sip("REGISTER sip:example.org SIP/2.0", ["Via: " + via % 1] + base + ["CSeq: 1 REGISTER",
               "Contact: <sip:dave@198.51.100.7:5070>", "Expires: 600", "User-Agent: edge-gen"])
    c401 = sip("SIP/2.0 401 Unauthorized", ["Via: " + via % 1] + base[:1] + [base[1] + ";tag=s1", base[2]] +
               ["CSeq: 1 REGISTER", "WWW-Authenticate: Digest realm=\"example.org\", nonce=\"n1\""])
    reg2 = sip("REGISTER sip:example.org SIP/2.0", ["Via: " + via % 2] + base + ["CSeq: 2 REGISTER",
               "Contact: <sip:dave@198.51.100.7:5070>", "Authorization: Digest username=\"dave\", realm=\"example.org\", nonce=\"n1\", uri=\"sip:example.org\", response=\"00000000000000000000000000000000\"",
               "Expires: 600"])
    r403 = sip("SIP/2.0 403 Forbidden", ["Via: " + via % 2] + base[:1] + [base[1] + ";tag=s1", base[2]] +
               ["CSeq: 2 REGISTER", "Warning: 399 example.org \"invalid password\""])
    up = lambda m: ip4("198.51.100.7", "203.0.113.1", 17, udp(5070, 5060, m))
    down = lambda m: ip4("203.0.113.1", "198.51.100.7", 17, udp(5060, 5070, m))
    pkts = [(0, T0 + 4.0, eth(up(reg1))), (1, T0 + 4.020000001, down(c401)),
            (0, T0 + 4.05, eth(up(reg2))), (1, T0 + 4.070000002, down(r403))]
    pcapng(os.path.join(OUT, "two_interfaces.pcapng"), [(1, 6), (228, 9)], pkts)


def gen_nat():
    # The client sits behind NAT: Contact and SDP carry 192.168.1.20, packets come from
    # 203.0.113.77, and the registrar writes received=203.0.113.77 into the Via.
    cid = "nat@edge"
    via = "Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK-n%d;rport"
    rvia = "Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK-n%d;rport=31000;received=203.0.113.77"
    hdr = ["From: <sip:erin@example.org>;tag=e1", "To: <sip:erin@example.org>", "Call-ID: " + cid]
    reg = sip("REGISTER sip:example.org SIP/2.0", [via % 1] + hdr + ["CSeq: 1 REGISTER",
              "Contact: <sip:erin@192.168.1.20:5060>", "Expires: 60"])
    ok = sip("SIP/2.0 200 OK", [rvia % 1] + hdr[:1] + [hdr[1] + ";tag=z", hdr[2], "CSeq: 1 REGISTER",
             "Contact: <sip:erin@192.168.1.20:5060>;expires=60"])
    inv_h = [via % 2, "From: <sip:erin@example.org>;tag=e2", "To: <sip:1001@example.org>",
             "Call-ID: natcall@edge", "CSeq: 1 INVITE", "Contact: <sip:erin@192.168.1.20:5060>",
             "Content-Type: application/sdp"]
    inv = sip("INVITE sip:1001@example.org SIP/2.0", inv_h, sdp("192.168.1.20")[:160])
    r100 = sip("SIP/2.0 100 Trying", [rvia % 2] + inv_h[1:5])
    r200 = sip("SIP/2.0 200 OK", [rvia % 2] + inv_h[1:2] + [inv_h[2] + ";tag=q"] + inv_h[3:5] +
               ["Contact: <sip:1001@203.0.113.1>", "Content-Type: application/sdp"],
               b"v=0\r\no=- 1 1 IN IP4 203.0.113.1\r\ns=-\r\nc=IN IP4 203.0.113.1\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n")
    up = lambda m: eth(ip4("203.0.113.77", "203.0.113.1", 17, udp(31000, 5060, m)))
    down = lambda m: eth(ip4("203.0.113.1", "203.0.113.77", 17, udp(5060, 31000, m)))
    pcap(os.path.join(OUT, "nat_private_contact.pcap"), 1,
         [(T0 + 5.0, up(reg)), (T0 + 5.02, down(ok)), (T0 + 6.0, up(inv)), (T0 + 6.01, down(r100)),
          (T0 + 7.5, down(r200))])


def gen_truncated():
    src = os.path.join(HERE, "lab_udp.pcap")
    with open(src, "rb") as f:
        data = f.read()
    # Cut in the middle of a packet record, about a third in.
    with open(os.path.join(OUT, "truncated_file.pcap"), "wb") as f:
        f.write(data[: len(data) // 3 + 7])
    # A capture taken with a small snaplen: the INVITE is cut after 200 bytes.
    inv, trying, ringing, ok = call_msgs("alice", "bob", "192.0.2.1", "snap@edge", "192.0.2.50")
    full = eth(ip4("192.0.2.50", "192.0.2.1", 17, udp(5060, 5060, inv[:1200])))
    pkts = [(T0 + 8.0, full[:200 + 42], len(full))]
    for i, m in enumerate((trying, ringing)):
        pkts.append((T0 + 8.1 + i * 0.2, eth(ip4("192.0.2.1", "192.0.2.50", 17, udp(5060, 5060, m)))))
    pcap(os.path.join(OUT, "truncated_packet.pcap"), 1, pkts, snaplen=242)
    # Only part of the pcap file header.
    with open(os.path.join(OUT, "truncated_header.pcap"), "wb") as f:
        f.write(data[:10])
    # A pcapng whose second block has an impossible length.
    with open(os.path.join(OUT, "two_interfaces.pcapng"), "rb") as f:
        ng = bytearray(f.read())
    # Walk to the last block (the 403) and break its length: the 401 exchange must survive.
    pos, last = 0, 0
    while pos < len(ng):
        last = pos
        pos += struct.unpack_from("<I", ng, pos + 4)[0]
    struct.pack_into("<I", ng, last + 4, 7)
    with open(os.path.join(OUT, "corrupt_block.pcapng"), "wb") as f:
        f.write(bytes(ng))


def log_msg(lines_prefix, msg):
    return "\n".join(lines_prefix + l for l in msg.decode().split("\r\n"))


def gen_logs():
    # pjsua: a registration whose credentials are refused by a re-challenge (401 loop).
    hdr = ["Via: SIP/2.0/UDP 10.1.1.9:5060;rport;branch=z9hG4bKPj%s",
           "From: <sip:frank@voip.example.com>;tag=pj1", "To: <sip:frank@voip.example.com>",
           "Call-ID: pjsip-reg-1", "CSeq: %d REGISTER"]
    out = []
    t = ["10:00:00.100", "10:00:00.180", "10:00:00.200", "10:00:00.290"]
    for i in range(2):
        h = [hdr[0] % ("b%d" % i)] + hdr[1:4] + [hdr[4] % (i + 1)]
        extra = ["Contact: <sip:frank@10.1.1.9:5060;ob>", "Expires: 300", "User-Agent: PJSUA v2.12"]
        if i:
            extra.append('Authorization: Digest username="frank", realm="voip.example.com", nonce="x", response="ffffffffffffffffffffffffffffffff"')
        req = sip("REGISTER sip:voip.example.com SIP/2.0", h + extra)
        out.append("%s   pjsua_core.c  .TX %d bytes Request msg REGISTER/cseq=%d (tdta0x55d0%d) to UDP 192.0.2.80:5060:"
                   % (t[2 * i], len(req), i + 1, i))
        out.append(req.decode().replace("\r\n", "\n") + "--end msg--")
        resp = sip("SIP/2.0 401 Unauthorized", [h[0] + ";received=198.51.100.9"] + h[1:2] +
                   [h[2] + ";tag=srv"] + h[3:] + ['WWW-Authenticate: Digest realm="voip.example.com", nonce="y%d"' % i])
        out.append("%s   pjsua_core.c  .RX %d bytes Response msg 401/REGISTER/cseq=%d (rdata0x7f00%d) from UDP 192.0.2.80:5060:"
                   % (t[2 * i + 1], len(resp), i + 1, i))
        out.append(resp.decode().replace("\r\n", "\n") + "--end msg--")
    out.append("10:00:00.300   pjsua_acc.c  ..SIP registration failed, status=401 (Unauthorized)")
    with open(os.path.join(OUT, "pjsua.log"), "w") as f:
        f.write("\n".join(out) + "\n")

    # linphone / belle-sip: REGISTER to a domain that does not know the account (404), then
    # a TLS certificate failure on the fallback transport.
    lin = []
    reg = sip("REGISTER sip:sip.example.net SIP/2.0",
              ["Via: SIP/2.0/UDP 10.2.2.2:5062;branch=z9hG4bK.lin1;rport", "From: <sip:grace@sip.example.net>;tag=g1",
               "To: sip:grace@sip.example.net", "CSeq: 20 REGISTER", "Call-ID: lin-reg-1", "Max-Forwards: 70",
               "Contact: <sip:grace@10.2.2.2:5062>", "User-Agent: Linphone/5.2.0 (belle-sip/5.2.0)"])
    nf = sip("SIP/2.0 404 Not Found",
             ["Via: SIP/2.0/UDP 10.2.2.2:5062;branch=z9hG4bK.lin1;rport=5062;received=10.2.2.2",
              "From: <sip:grace@sip.example.net>;tag=g1", "To: sip:grace@sip.example.net;tag=nf", "CSeq: 20 REGISTER",
              "Call-ID: lin-reg-1", "Warning: 399 sip.example.net \"unknown user\""])
    lin.append("2026-11-26 09:15:02:114 belle-sip-message-channel [0x5581]: message sent to [udp://192.0.2.90:5060], size: [%d] bytes" % len(reg))
    lin.append(reg.decode().replace("\r\n", "\n"))
    lin.append("2026-11-26 09:15:02:160 belle-sip-message-channel [0x5581]: message received from [udp://192.0.2.90:5060], size: [%d] bytes" % len(nf))
    lin.append(nf.decode().replace("\r\n", "\n"))
    lin.append("2026-11-26 09:15:05:001 belle-sip-error-TLS handshake failed: certificate verify failed (X509 - Certificate verification failed, e.g. CRL, CA or signature check failed)")
    with open(os.path.join(OUT, "linphone.log"), "w") as f:
        f.write("\n".join(lin) + "\n")

    # Generic application log: every line of the SIP message carries a timestamp prefix.
    inv, trying, ringing, ok = call_msgs("henry", "1001", "pbx.example.com", "generic-call-1", "172.16.0.4")
    inv = sip(inv.split(b"\r\n", 1)[0].decode(), inv.decode().split("\r\n")[1:7], b"")
    bye = sip("BYE sip:1001@pbx.example.com SIP/2.0",
              ["Via: SIP/2.0/UDP 172.16.0.4:5060;branch=z9hG4bK-bye", "From: <sip:henry@pbx.example.com>;tag=a1",
               "To: <sip:1001@pbx.example.com>;tag=b2", "Call-ID: generic-call-1", "CSeq: 2 BYE"])
    bye_ok = sip("SIP/2.0 200 OK",
                 ["Via: SIP/2.0/UDP 172.16.0.4:5060;branch=z9hG4bK-bye", "From: <sip:henry@pbx.example.com>;tag=a1",
                  "To: <sip:1001@pbx.example.com>;tag=b2", "Call-ID: generic-call-1", "CSeq: 2 BYE"])
    gen = ["2026-11-26T08:00:00.000 INFO app started"]
    stamps = [("08:00:01.000", "SEND >>"), ("08:00:01.040", "RECV <<"), ("08:00:02.540", "RECV <<"),
              ("08:00:04.040", "RECV <<"), ("08:00:34.040", "SEND >>"), ("08:00:34.090", "RECV <<")]
    ok_nobody = ok.split(b"\r\n\r\n", 1)[0].replace(b"Content-Type: application/sdp\r\n", b"")
    ok_nobody = ok_nobody.replace(b"Content-Length: %d" % len(ok.split(b"\r\n\r\n", 1)[1]), b"Content-Length: 0") + b"\r\n\r\n"
    for (ts, arrow), m in zip(stamps, (inv, trying, ringing, ok_nobody, bye, bye_ok)):
        gen.append(log_msg("2026-11-26 %s DEBUG [sip] %s " % (ts, arrow), m.rstrip(b"\r\n") + b"\r\n"))
    with open(os.path.join(OUT, "generic_prefixed.log"), "w") as f:
        f.write("\n".join(gen) + "\n")


def gen_garbage():
    import random
    r = random.Random(6)
    with open(os.path.join(OUT, "garbage.bin"), "wb") as f:
        f.write(bytes(r.getrandbits(8) for _ in range(4096)))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    gen_fragmented_v4()
    gen_fragmented_v6()
    gen_tcp()
    gen_two_ifaces()
    gen_nat()
    gen_truncated()
    gen_logs()
    gen_garbage()
    for name in sorted(os.listdir(OUT)):
        print("%8d %s" % (os.path.getsize(os.path.join(OUT, name)), name))
