#!/bin/sh
# Runs segura beside the peer recorders (script, tlog, asciinema, sudo I/O log, ttyrec) with the
# shared peers.py, on both workloads, in one run; then checks segura's log is complete.
# Usage: bench/run.sh [peers.py options, e.g. --reps 5]   (PEERS=dir of peers.py; root, Debian 12)
set -eu
cd "$(dirname "$0")/.."; PEERS="${PEERS:-../shared/bench}"; sh "$PEERS/install-peers.sh"; cargo build --release --locked -p segura; export PATH="$(pwd)/target/release:$PATH"; mkdir -p bench/results
for kind in base64 text; do python3 "$PEERS/peers.py" --kind "$kind" --recorders-json bench/segura.json --json-out "bench/results/peers-$kind.json" --md-out "bench/results/peers-$kind.md" "$@"; python3 bench/complete.py "$PEERS" --kind "$kind"; done
