#!/bin/sh
# Backlog drain: MIB MiB (default 1024) of recorded output waiting in the spool, uploaded by
# `segura sync` to segura-server on 127.0.0.1; reported as MiB/s and the agent's CPU, beside a
# baseline in the same run: curl posting the same number of bytes over loopback HTTP to a sink
# that only reads them (what the transport alone costs).
set -eu
cd "$(dirname "$0")/.."
MIB="${MIB:-1024}"
cargo build --release --locked -p segura -p segura-server
S="$(pwd)/target/release/segura"; SS="$(pwd)/target/release/segura-server"
W="$(mktemp -d)"; SINK=; trap 'kill "$SRV" $SINK 2>/dev/null || true; rm -rf "$W"' EXIT
"$SS" serve --listen 127.0.0.1:0 --data "$W/data" > "$W/server.out" 2>/dev/null & SRV=$!
until grep -q "listening on" "$W/server.out"; do sleep 0.1; done
URL="http://$(sed -n 's/^listening on //p' "$W/server.out")"
printf '[spool]\npath = "%s/spool.db"\nmax_bytes = 8589934592\n[upload]\ncredentials = "%s/host.toml"\nbatch_bytes = %s\n' "$W" "$W" "${BATCH:-7340032}" > "$W/segura.toml"
export SEGURA_CONFIG="$W/segura.toml"
"$S" enroll-host --server "$URL" --token "$("$SS" admin enroll-token --data "$W/data" 2>/dev/null | head -1)" >/dev/null
echo "recording $MIB MiB of incompressible output into the spool..."
"$S" rec -- head -c "${MIB}M" /dev/urandom > /dev/null
STORED=$(sqlite3 "$W/spool.db" "select sum(length(data)) from chunks")
t0=$(date +%s.%N); /usr/bin/time -f "%U %S" -o "$W/cpu" "$S" sync >/dev/null; t1=$(date +%s.%N)
head -c "$STORED" /dev/zero > "$W/blob"
python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers["Content-Length"])
        while n > 0:
            n -= len(self.rfile.read(min(n, 1 << 20)))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H); print(s.server_port, flush=True); s.handle_request()
' > "$W/sink.port" 2>/dev/null & SINK=$!
until [ -s "$W/sink.port" ]; do sleep 0.05; done
b0=$(date +%s.%N); curl -s -o /dev/null -H "Expect:" -X POST -T "$W/blob" "http://127.0.0.1:$(cat "$W/sink.port")/"; b1=$(date +%s.%N); wait "$SINK" || true
python3 - "$STORED" "$t0" "$t1" "$b0" "$b1" "$(cat "$W/cpu")" <<'PY'
import sys
stored, t0, t1, b0, b1, u, s = int(sys.argv[1]), *map(float, sys.argv[2:6]), *map(float, sys.argv[6].split())
mib = stored / 1048576
print("backlog: %.0f MiB stored in the spool" % mib)
print("segura sync: %.1f s, %.0f MiB/s, agent CPU %.2f s user + %.2f s sys" % (t1 - t0, mib / (t1 - t0), u, s))
print("baseline (curl POST of the same bytes to a loopback sink): %.0f MiB/s" % (mib / (b1 - b0)))
print("ratio: segura sync at %.2fx the baseline's throughput (target >= 100 MiB/s)" % ((mib / (t1 - t0)) / (mib / (b1 - b0))))
PY
