#!/bin/sh
# The package test: installs the .debs built by scripts/deb.sh into a clean Debian 12 root
# (debootstrap, minbase) with apt, records an ssh login there, upgrades, refuses a downgrade
# that would break the spool, and purges. Run as root; scripts/test.sh runs it.
#
#   scripts/deb-test.sh            build the packages (scripts/deb.sh), then test them
#   scripts/deb-test.sh prepare    only create the cached Debian root
#
# The debootstrapped root is cached as target/deb-test/bookworm-*.tar (minbase + openssh-server,
# sshpass and fresh apt lists), so a rerun takes about a minute; every run unpacks it into a
# fresh directory, works there inside `unshare --mount --pid` (the /proc, /dev and /dev/pts
# mounts and every process started there end with it) and removes it at the end.
set -eu
cd "$(dirname "$0")/.."
ROOTDIR=$(pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOTDIR/target}
WORK=$TARGET/deb-test
MIRROR=${SEGURA_DEBIAN_MIRROR:-http://deb.debian.org/debian}
INCLUDE=openssh-server,openssh-client,sshpass
# The cache is named after what it was made from: another package list makes a new one.
CACHE=$WORK/bookworm-$(printf '%s %s' "$INCLUDE" "$MIRROR" | md5sum | cut -c1-8).tar
mkdir -p "$WORK"

prepare() {
    [ -s "$CACHE" ] && return 0
    echo "deb-test: debootstrapping Debian 12 (once; cached in $CACHE)"
    tmp=$WORK/bootstrap
    rm -rf "$tmp"
    rm -f "$WORK"/bookworm*.tar
    # In a mount namespace of its own: whatever debootstrap mounts (/proc, /sys) is gone, even
    # when it fails, before the directory is removed.
    if ! unshare --mount --propagation private sh -c '
            debootstrap --variant=minbase --include="$1" bookworm "$2" "$3" &&
            printf "deb %s bookworm main\ndeb %s bookworm-updates main\n" "$3" "$3" >"$2/etc/apt/sources.list" &&
            cp /etc/resolv.conf "$2/etc/resolv.conf" &&
            chroot "$2" apt-get update -qq &&
            chroot "$2" apt-get clean' sh "$INCLUDE" "$tmp" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
        tail -30 "$WORK/debootstrap.log" >&2
        rm -rf "$tmp"
        exit 1
    fi
    tar -C "$tmp" -cf "$CACHE.new" .
    mv "$CACHE.new" "$CACHE"
    rm -rf "$tmp"
}


# ---------------------------------------------------------------------------------------------
# Inside `unshare --mount --pid --fork`: the root, then the directories of the lower version's
# packages and of those under test.
inner() {
    R=$1 OLD=$2 NEW=$3
    say() { echo "deb-test: $*"; }
    fail() { echo "deb-test: FAILED: $*" >&2; exit 1; }
    in_root() {
        chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
            DEBIAN_FRONTEND=noninteractive "$@"
    }
    apt_install() {
        # Dependencies come from deb.debian.org; the cached lists are refreshed when stale.
        if ! in_root apt-get install -y -q -o Dpkg::Options::=--force-confold "$@" >"$R/tmp/apt.log" 2>&1; then
            if grep -q "404\|Unable to fetch" "$R/tmp/apt.log"; then
                in_root apt-get update -qq && in_root apt-get install -y -q -o Dpkg::Options::=--force-confold "$@" >"$R/tmp/apt.log" 2>&1 && return 0
            fi
            return 1
        fi
    }
    json() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }

    # Private mounts: they end with this namespace.
    mount -t proc proc "$R/proc"
    mount -t tmpfs -o mode=0755,nosuid tmpfs "$R/dev"
    for d in null zero full random urandom tty; do
        touch "$R/dev/$d"
        mount --bind "/dev/$d" "$R/dev/$d"
    done
    mkdir "$R/dev/pts" "$R/dev/shm"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$R/dev/pts"
    ln -s pts/ptmx "$R/dev/ptmx"
    mount -t tmpfs -o mode=1777 tmpfs "$R/dev/shm"
    mount -t tmpfs -o mode=0755,nosuid tmpfs "$R/run"
    cp /etc/resolv.conf "$R/etc/resolv.conf"
    mkdir -p "$R/tmp/debs"
    cp "$OLD"/*.deb "$R/tmp/debs/"
    cp "$NEW"/*.deb "$R/tmp/debs/"
    old_v=$(dpkg-deb -f "$OLD"/segura_*.deb Version)
    new_v=$(dpkg-deb -f "$NEW"/segura_*.deb Version)
    arch=$(dpkg-deb -f "$OLD"/segura_*.deb Architecture)
    old_deb=/tmp/debs/segura_${old_v}_$arch.deb old_srv=/tmp/debs/segura-server_${old_v}_$arch.deb
    new_deb=/tmp/debs/segura_${new_v}_$arch.deb new_srv=/tmp/debs/segura-server_${new_v}_$arch.deb

    snapshot() { (cd "$R/etc/pam.d" && find . -printf '%p %y %m %U %G\n' | LC_ALL=C sort && find . -type f | LC_ALL=C sort | xargs sha256sum); }
    snapshot >"$R/tmp/pam.before"
    cp -a "$R/etc/pam.d" "$R/tmp/pam.d.before"
    tac_before=$(sha256sum "$R/usr/bin/tac" | cut -d' ' -f1)

    say "installing segura $old_v and segura-server $old_v with apt"
    apt_install "$old_deb" "$old_srv" || { cat "$R/tmp/apt.log" >&2; fail "apt-get install ./segura_$old_v.deb"; }
    grep -q "Get:.*libcurl4" "$R/tmp/apt.log" && say "dependencies resolved from the archive (libcurl4 …)"
    [ "$(in_root stat -c '%a %U %G' "/usr/sbin/segura-shell")" = "6755 segura segura" ] || fail "segura-shell mode: $(in_root stat -c '%a %U %G' "/usr/sbin/segura-shell")"
    [ "$(in_root stat -c '%a %U %G' "/usr/sbin/segura-launch")" = "6755 segura segura" ] || fail "segura-launch mode"
    [ "$(in_root stat -c '%a %U %G' "/var/lib/segura")" = "770 segura segura" ] || fail "/var/lib/segura mode"
    [ "$(in_root stat -c '%a %U' "/var/lib/segura-server")" = "700 segura-server" ] || fail "/var/lib/segura-server mode"
    for f in /lib/*/security/pam_segura.so /usr/share/man/man8/segura.8.gz /usr/share/man/man8/segura-shell.8.gz \
        /usr/share/man/man8/pam_segura.8.gz /usr/share/man/man5/segura.toml.5.gz /usr/share/man/man8/segura-server.8.gz \
        /lib/systemd/system/segura-sync.service /lib/systemd/system/segura-sync.timer \
        /lib/systemd/system/segura-server.service /usr/share/pam-configs/segura; do
        # shellcheck disable=SC2086
        ls $R$f >/dev/null 2>&1 || fail "$f is not installed"
    done
    grep -qx /etc/segura/segura.toml "$R/var/lib/dpkg/info/segura.conffiles" || fail "segura.toml is not a conffile"
    snapshot | cmp -s - "$R/tmp/pam.before" || fail "installing changed /etc/pam.d"
    say "installed: modes, conffile, units and man pages in place; /etc/pam.d untouched"

    say "recording an ssh login to 127.0.0.1 in the installed system"
    in_root useradd -m -s /bin/bash sgdeb-ann
    echo 'sgdeb-ann:deb-test-pw-7' | in_root chpasswd
    in_root segura policy add --name "record ann" --guideline login-session --record yes --user sgdeb-ann >/dev/null
    in_root segura enroll sgdeb-ann
    in_root segura setup --services sshd
    free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
    wait_port() {
        python3 - "$1" <<'PY'
import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
PY
    }
    port=$(free_port)
    mkdir -p "$R/run/sshd"
    in_root /usr/sbin/sshd -D -e -p "$port" -o ListenAddress=127.0.0.1 -o PasswordAuthentication=yes \
        2>"$R/tmp/sshd.log" &
    sshd_pid=$!
    wait_port "$port" || fail "sshd did not start: $(cat "$R/tmp/sshd.log")"
    ssh_ann() {
        in_root sshpass -p deb-test-pw-7 ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
            -o LogLevel=ERROR -p "$port" sgdeb-ann@127.0.0.1 "$@" </dev/null
    }
    out=$(ssh_ann 'echo deb-marker-one; id -un') || fail "ssh login failed: $(tail "$R/tmp/sshd.log")"
    echo "$out" | grep -q deb-marker-one || fail "ssh output: $out"
    recordings() { in_root segura ls --json; }
    wait_recordings() {
        i=0
        while [ "$(recordings | json 'print(len([r for r in d if r["state"] in ("complete","ended") or r.get("ended_at")]))')" -lt "$1" ]; do
            i=$((i + 1))
            [ $i -lt 100 ] || fail "expected $1 finished recording(s): $(in_root segura ls)"
            sleep 0.1
        done
    }
    wait_recordings 1
    id1=$(recordings | json 'r=d[0]; assert r["user"]=="sgdeb-ann" and r["service"]=="sshd", r; print(r["id"])')
    in_root segura export "$id1" --format text | grep -q deb-marker-one || fail "the transcript lacks the command's output"
    in_root segura ls
    say "recorded: $id1 (sgdeb-ann over sshd)"

    # segura-server as its unit runs it: the unit's User and ExecStart, with the options of
    # /etc/default/segura-server (edited as an administrator would: another port).
    say "segura-server: the unit's command as its user; this host enrolled; segura sync delivers"
    unit=$R/lib/systemd/system/segura-server.service
    srv_user=$(sed -n 's/^User=//p' "$unit")
    srv_port=$(free_port)
    sed -i "s/127.0.0.1:8080/127.0.0.1:$srv_port/" "$R/etc/default/segura-server"
    # shellcheck disable=SC1091
    . "$R/etc/default/segura-server"
    srv_cmd=$(sed -n 's/^ExecStart=//p' "$unit" | sed "s|\$SEGURA_SERVER_OPTS|$SEGURA_SERVER_OPTS|")
    # shellcheck disable=SC2086
    in_root runuser -u "$srv_user" -- $srv_cmd >"$R/tmp/server.log" 2>&1 &
    server_pid=$!
    wait_port "$srv_port" || fail "segura-server did not start: $(cat "$R/tmp/server.log")"
    srv_admin() { in_root runuser -u "$srv_user" -- segura-server admin "$@" --data /var/lib/segura-server; }
    token=$(srv_admin enroll-token 2>/dev/null | awk '{ print $1; exit }')
    in_root segura enroll-host --server "http://127.0.0.1:$srv_port" --token "$token" >/dev/null
    # A binary-run rule: `segura sync` wraps the program (dpkg-divert) to follow it.
    in_root segura policy add --name "audit tac" --guideline binary-run --application /usr/bin/tac \
        --user sgdeb-ann >/dev/null
    in_root segura sync >/dev/null || fail "segura sync"
    srv_admin recordings --json | json "assert any(r.get('id')=='$id1' or r.get('recording_id')=='$id1' for r in d), d" \
        || fail "the platform did not get $id1"
    in_root dpkg-divert --list /usr/bin/tac | grep -q "by segura" || fail "tac was not wrapped by segura sync"
    [ "$(in_root stat -c '%U' /var/lib/segura-server)" = "$srv_user" ] || fail "data dir owner"
    say "delivered $id1 to the platform; tac wrapped (diverted) by the binary-run rule"

    say "upgrading to $new_v"
    apt_install "$new_deb" "$new_srv" || { cat "$R/tmp/apt.log" >&2; fail "upgrade"; }
    [ "$(in_root dpkg-query -W -f='${Version}' segura)" = "$new_v" ] || fail "not upgraded"
    recordings | json "assert any(r['id']=='$id1' for r in d), d" || fail "the recording is gone after the upgrade"
    in_root segura check >/dev/null || fail "segura check after the upgrade"
    [ "$(in_root stat -c '%a %U %G' "/usr/sbin/segura-shell")" = "6755 segura segura" ] || fail "segura-shell mode after upgrade"
    out=$(ssh_ann 'echo deb-marker-two') || fail "ssh after the upgrade"
    wait_recordings 2
    say "upgrade kept the recording; a new login was recorded too"

    say "downgrading to $old_v over a spool a newer segura wrote (schema +1) must be refused"
    spool=$R/var/lib/segura/spool.db
    schema=$(in_root segura spool-schema)
    sqlite3 "$spool" "PRAGMA user_version = $((schema + 1));"
    # The database and what its write-ahead log holds (a reader may leave an empty -wal and the
    # -shm index, which every reader uses; neither holds data).
    spool_sum() { for f in "$spool" "$spool-wal"; do [ ! -s "$f" ] || sha256sum "$f"; done; }
    before=$(spool_sum)
    if apt_install --allow-downgrades "$old_deb"; then fail "the downgrade went through"; fi
    grep -q "refusing to install segura $old_v: the spool has schema version $((schema + 1))" "$R/tmp/apt.log" \
        || { cat "$R/tmp/apt.log" >&2; fail "no clear message"; }
    grep "^segura:" "$R/tmp/apt.log" | sed 's/^/    | /'
    [ "$(in_root dpkg-query -W -f='${Version} ${Status}' segura)" = "$new_v install ok installed" ] || fail "the installed segura changed"
    [ "$(spool_sum)" = "$before" ] || fail "the spool changed: $before / $(spool_sum)"
    in_root segura ls 2>&1 | grep -q "newer than this segura understands" || fail "segura ls does not say why"
    sqlite3 "$spool" "PRAGMA user_version = $schema;"
    say "refused with a clear message; the spool and the installed package unchanged"

    say "purging (with the pam-auth-update profile enabled too)"
    in_root pam-auth-update --enable segura
    grep -q pam_segura "$R/etc/pam.d/common-session" || fail "the pam-auth-update profile did not enable"
    kill "$sshd_pid" "$server_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    in_root apt-get purge -y -q segura segura-server >"$R/tmp/apt.log" 2>&1 || { cat "$R/tmp/apt.log" >&2; fail "purge"; }
    grep "^segura" "$R/tmp/apt.log" | sed 's/^/    | /'
    if ! snapshot | cmp -s - "$R/tmp/pam.before"; then
        diff -r "$R/tmp/pam.d.before" "$R/etc/pam.d" >&2 || true
        fail "/etc/pam.d differs from before the installation"
    fi
    [ "$(in_root getent passwd sgdeb-ann | cut -d: -f7)" = /bin/bash ] || fail "the shell was not restored"
    [ "$(sha256sum "$R/usr/bin/tac" | cut -d' ' -f1)" = "$tac_before" ] || fail "tac was not restored"
    if in_root dpkg-divert --list | grep -q segura; then fail "a diversion is left"; fi
    [ -s "$spool" ] || fail "the recordings were not kept"
    [ ! -e "$R/etc/segura" ] || fail "/etc/segura is left: $(ls -A "$R/etc/segura")"
    if in_root dpkg-statoverride --list | grep -q segura; then fail "a statoverride is left"; fi
    say "purged: /etc/pam.d byte-identical to before, shell and tac restored, recordings kept"

    # With no segura installed, preinst reads the schema from the database header itself.
    sqlite3 "$spool" "PRAGMA user_version = $((schema + 1));"
    if apt_install "$new_deb"; then fail "installed over a spool it cannot read"; fi
    grep -q "refusing to install segura $new_v: the spool has schema version $((schema + 1))" "$R/tmp/apt.log" \
        || { cat "$R/tmp/apt.log" >&2; fail "no clear message on a fresh install"; }
    sqlite3 "$spool" "PRAGMA user_version = $schema;"
    say "reinstalling finds the kept recordings; purging with SEGURA_PURGE_SPOOL=1 removes them"
    apt_install "$new_deb" || { cat "$R/tmp/apt.log" >&2; fail "reinstall"; }
    recordings | json "assert any(r['id']=='$id1' for r in d), d" || fail "the kept recording is not listed"
    chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin SEGURA_PURGE_SPOOL=1 \
        apt-get purge -y -q segura >"$R/tmp/apt.log" 2>&1 || { cat "$R/tmp/apt.log" >&2; fail "purge"; }
    [ ! -e "$R/var/lib/segura" ] || fail "/var/lib/segura is left"
    if in_root getent passwd segura >/dev/null; then fail "the segura user is left"; fi
    snapshot | cmp -s - "$R/tmp/pam.before" || fail "/etc/pam.d differs after the second purge"
    say "purged with the spool"
}

if [ "${1:-}" = prepare ]; then
    prepare
    exit 0
fi
if [ "${1:-}" = inner ]; then
    shift
    inner "$@"
    exit 0
fi

[ "$(id -u)" = 0 ] || { echo "deb-test: run as root" >&2; exit 1; }
# The packages as built (the upgrade's target), and the same binaries as a lower version that is
# installed first (the "previous build").
OLD=$WORK/old NEW=$WORK/new
rm -rf "$OLD" "$NEW"
mkdir -p "$OLD" "$NEW"
rm -f "$TARGET"/debian/*.deb
./scripts/deb.sh >/dev/null
base=$(dpkg-deb -f "$TARGET"/debian/segura_*.deb Version)
cp "$TARGET"/debian/*.deb "$NEW/"
SEGURA_DEB_NO_BUILD=1 SEGURA_DEB_VERSION="$base~prev" OUT_DIR="$OLD" ./scripts/deb.sh >/dev/null
echo "deb-test: testing segura $base (upgrading from $base~prev)"
prepare

R=$WORK/root
cleanup() {
    if grep -q " $R/" /proc/self/mounts; then
        echo "deb-test: mounts left under $R; not removing it" >&2
        return
    fi
    rm -rf "$R"
}
cleanup
mkdir -p "$R"
trap cleanup EXIT INT TERM
tar -C "$R" -xf "$CACHE"
unshare --mount --pid --fork --kill-child --propagation private "$0" inner "$R" "$OLD" "$NEW"
echo "deb-test: ok"
