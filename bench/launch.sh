#!/bin/sh
# Launcher overhead for a run no rule covers: a copy of `true` wrapped by `segura wrap` against
# the same program unwrapped, N runs each (default 1000), p50 in the same run. Root; undoes
# the wrap (and /etc/segura/wrapped) at the end.
set -eu
cd "$(dirname "$0")/.."
N="${N:-1000}"
cargo build --release --locked -p segura -p segura-launch
W="$(mktemp -d)"; chmod 755 "$W"
HAD_ETC=; [ -d /etc/segura ] && HAD_ETC=1
cleanup() {
    SEGURA_CONFIG="$W/segura.toml" target/release/segura unwrap "$W/true" >/dev/null 2>&1 || true
    [ -n "$HAD_ETC" ] || rmdir /etc/segura 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
cp /bin/true "$W/true"; cp /bin/true "$W/true-direct"
printf '[spool]\npath = "%s/spool.db"\n' "$W" > "$W/segura.toml"
SEGURA_CONFIG="$W/segura.toml" target/release/segura wrap "$W/true" --launcher target/release/segura-launch >/dev/null
python3 - "$N" "$W/true-direct" "$W/true" <<'PY'
import subprocess, sys, time, statistics
n = int(sys.argv[1])
def p50(path):
    ts = []
    for _ in range(n):
        t = time.perf_counter_ns(); subprocess.run([path], check=True); ts.append((time.perf_counter_ns() - t) / 1e3)
    return statistics.median(ts)
direct, wrapped = p50(sys.argv[2]), p50(sys.argv[3])
print("launcher, no rule, %d runs: true p50 %.0f us, wrapped true p50 %.0f us: +%.0f us (%.2fx; target <= +1000 us)"
      % (n, direct, wrapped, wrapped - direct, wrapped / direct))
PY
