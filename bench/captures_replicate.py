#!/usr/bin/env python3
"""Replicates a recorded SIP capture N times into one larger capture (used by captures.sh).

Each copy gets its own Call-IDs and is shifted in time after the previous one. SIPp Call-IDs
look like "<call number>-<pid>@<ip>": the pid digits are replaced by a copy tag of the same
length, so no length field or header changes size. Usage: captures_replicate.py IN OUT COPIES
"""
import re
import struct
import sys

CALL_ID = re.compile(rb"(Call-ID: \d+-)(\d+)(@)")


def main():
    src, dst, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
    data = open(src, "rb").read()
    magic = struct.unpack_from("<I", data, 0)[0]
    if magic != 0xA1B2C3D4:
        sys.exit("replicate: expects a little-endian microsecond pcap (tcpdump's default)")
    header, records, pos = data[:24], [], 24
    while pos + 16 <= len(data):
        sec, usec, caplen, orig = struct.unpack_from("<IIII", data, pos)
        frame = data[pos + 16:pos + 16 + caplen]
        if len(frame) < caplen:
            break
        records.append((sec + usec / 1e6, frame, orig))
        pos += 16 + caplen
    if not records:
        sys.exit("replicate: no packets")
    span = records[-1][0] - records[0][0] + 1.0
    with open(dst, "wb") as out:
        out.write(header)
        for c in range(copies):
            def tag(m):
                width = len(m.group(2))
                return m.group(1) + str(c).rjust(width, "9").encode() + m.group(3)
            for t, frame, orig in records:
                frame = CALL_ID.sub(tag, frame) if c else frame
                t += c * span
                sec = int(t)
                out.write(struct.pack("<IIII", sec, int(round((t - sec) * 1e6)) % 1000000, len(frame), orig))
                out.write(frame)


if __name__ == "__main__":
    main()
