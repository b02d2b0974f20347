#!/bin/sh
# PAM and login-shell overhead (run as root on Debian 12): open_session+close_session through
# libpam for a user no rule matches and for one a rule records, against a pam_permit-only
# service in the same run; and segura-shell's cost for an unrecorded login against the bare
# shell. Creates its test users and service files and removes them at the end.
set -eu
cd "$(dirname "$0")/.."
N="${N:-1000}"
./scripts/deps.sh
cargo build --release --locked -p segura -p segura-shell -p pam_segura
W="$(mktemp -d)"; chmod 755 "$W"
cleanup() {
    rm -f /etc/pam.d/sgt-bench-base /etc/pam.d/sgt-bench-seg
    for u in sgtbench-rec sgtbench-no; do userdel -r -f "$u" 2>/dev/null || true; done
    groupdel sgtbench 2>/dev/null || true; userdel -f sgtbenchspool 2>/dev/null || true
    rm -rf "$W" /run/segura/armed/"$(id -u sgtbench-rec 2>/dev/null || echo none)"
}
trap cleanup EXIT
gcc -O2 -o "$W/pam_latency" bench/pam_latency.c -lpam
groupadd -f sgtbench
useradd -m -g sgtbench -s /bin/bash sgtbench-rec; useradd -m -s /bin/bash sgtbench-no
useradd -r -M -U -s /usr/sbin/nologin sgtbenchspool
cat > "$W/segura.toml" <<TOML
[spool]
path = "$W/spool/spool.db"
owner = "sgtbenchspool"
group = "sgtbenchspool"
[[rule]]
name = "bench"
guideline = "login-session"
enable_recording = true
subject_type = "group"
subject = "sgtbench"
TOML
printf 'auth required pam_permit.so\naccount required pam_permit.so\nsession required pam_permit.so\n' > /etc/pam.d/sgt-bench-base
printf 'auth required pam_permit.so\naccount required pam_permit.so\nsession required pam_permit.so\nsession optional %s config=%s\n' \
    "$(pwd)/target/release/libpam_segura.so" "$W/segura.toml" > /etc/pam.d/sgt-bench-seg
set -- $("$W/pam_latency" sgt-bench-base sgtbench-no "$N"); b50=$1; b99=$2
set -- $("$W/pam_latency" sgt-bench-seg sgtbench-no "$N"); n50=$1; n99=$2
set -- $("$W/pam_latency" sgt-bench-seg sgtbench-rec "$N"); m50=$1; m99=$2
echo "PAM session (pam_start..pam_end), $N each, microseconds:"
echo "  pam_permit only (baseline)   p50 $b50  p99 $b99"
echo "  + pam_segura, user not matched  p50 $n50  p99 $n99  (p99 $(awk "BEGIN{printf \"%.2f\", $n99/$b99}")x baseline; target p99 <= 2000)"
echo "  + pam_segura, user recorded     p50 $m50  p99 $m99  (p99 $(awk "BEGIN{printf \"%.2f\", $m99/$b99}")x baseline; target p99 <= 5000)"
# segura-shell for a login nothing armed: it must exec the real shell at once.
python3 - "$N" "$(pwd)/target/release/segura-shell" <<'PY'
import os, subprocess, sys, time, statistics
n, shell = int(sys.argv[1]), sys.argv[2]
# As after a login: sshd, login and su set LOGNAME.
env = dict(os.environ, LOGNAME=os.environ.get("LOGNAME", "root"))
def p50(argv):
    ts = []
    for _ in range(n):
        t = time.perf_counter_ns(); subprocess.run(argv, check=True, env=env); ts.append((time.perf_counter_ns() - t) / 1e3)
    return statistics.median(ts)
base = p50(["/bin/bash", "-c", "true"]); seg = p50([shell, "-c", "true"])
print("segura-shell, unrecorded login, %d runs: bash -c true p50 %.0f us, segura-shell -c true p50 %.0f us: +%.0f us (%.2fx; target <= +1000 us)" % (n, base, seg, seg - base, seg / base))
PY
