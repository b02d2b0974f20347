#!/bin/sh
# Server ingest: HOSTS (default 200) simulated hosts at once, each uploading one recording as
# BATCHES (20) chunk batches of CHUNKS (8) chunks of CHUNK_BYTES (49152) incompressible bytes to
# segura-server on 127.0.0.1 (plain HTTP, SQLite store in a temporary directory); reports chunks/s,
# MiB/s and p50/p99/max request latency, beside a baseline in the same run: the same request
# bodies POSTed by the same threads to a loopback HTTP sink that only reads them
# (server/examples/ingest_load.rs). Extra arguments go to the example.
#
# Setup (enrolling the hosts: 5/s per client address) takes about 40 s for 200 hosts and is not
# measured. The per-host request limit (serve --rate/--burst, default 200/s, bursts of 400) is far
# above what one host sends here; RATE and BURST override it.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --locked -p segura-server --bin segura-server --example ingest_load
SS="$(pwd)/target/release/segura-server"
LOAD="$(pwd)/target/release/examples/ingest_load"
W="$(mktemp -d)"; SRV=
trap 'if [ -n "$SRV" ]; then kill "$SRV" 2>/dev/null || true; wait "$SRV" 2>/dev/null || true; fi; rm -rf "$W"' EXIT
trap 'exit 130' INT TERM
"$SS" serve --listen 127.0.0.1:0 --data "$W/data" --rate "${RATE:-200}" --burst "${BURST:-400}" \
    > "$W/server.out" 2> "$W/server.log" & SRV=$!
i=0
until grep -q "^listening on " "$W/server.out"; do
    i=$((i + 1))
    if [ "$i" -gt 100 ] || ! kill -0 "$SRV" 2>/dev/null; then
        echo "segura-server did not start:" >&2; cat "$W/server.log" >&2; exit 1
    fi
    sleep 0.1
done
URL="http://$(sed -n 's/^listening on //p' "$W/server.out")"
"$LOAD" --url "$URL" --data "$W/data" \
    --hosts "${HOSTS:-200}" --batches "${BATCHES:-20}" \
    --chunks-per-batch "${CHUNKS:-8}" --chunk-bytes "${CHUNK_BYTES:-49152}" "$@"
echo "server: $(du -sh "$W/data" | cut -f1) in the data directory; $(grep -c ' ERROR ' "$W/server.log" || true) errors logged"
