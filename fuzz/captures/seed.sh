#!/usr/bin/env bash
# Seeds the corpus from the captures crate's test data (small files only).
set -euo pipefail
cd "$(dirname "$0")"
T=../../crates/captures/test_data
for f in "$T"/*.pcap "$T"/*.pcapng "$T"/edge/*.pcap "$T"/edge/*.pcapng; do
    [[ $(stat -c %s "$f") -le 65536 ]] || continue
    # The target strips one leading odd byte before reading a whole file.
    { printf '\001'; cat "$f"; } >"corpus/capture/$(basename "$f")"
done
for f in "$T"/*.log "$T"/edge/*.log; do cp "$f" "corpus/log/$(basename "$f")"; done
