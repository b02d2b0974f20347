#!/bin/bash
# The segura demo, for real: builds segura, installs it into a throwaway directory, creates demo
# users and a recording rule, enrolls a user (segura-shell as login shell), adds pam_segura to a
# throwaway sshd PAM service, runs a real sshd on 127.0.0.1 and logs in through it (a command, an
# interactive session typed by this script, a user the rule does not cover, a login with no
# shell), records a standalone session with `segura rec`, then lists, exports and replays.
#
# Run as root on Debian 12 (it installs what it needs first). Needs no terminal (`</dev/null` is
# fine). On exit it removes everything it created in the system (users, groups, PAM file, sshd,
# enrollment, markers) and keeps only the throwaway directory with the spool and the asciicast.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
if [ "$(id -u)" != 0 ]; then
    echo "demo: run this as root (it creates users, a PAM service and an sshd)" >&2
    exit 1
fi
./scripts/deps.sh

# Everything the demo creates in the system carries one of these names.
SPOOL_USER=sgdemo-spool   # owns the spool; segura-shell is setuid/setgid to it
REC_GROUP=sgdemo-rec      # the rule records logins of users whose PRIMARY group this is
OTHER_GROUP=sgdemo-oth
ANN=sgdemo-ann            # primary group sgdemo-rec: recorded
BOB=sgdemo-bob            # primary group sgdemo-oth, secondary sgdemo-rec: not recorded
SERVICE=sshd-sgd          # sshd names its PAM service after the name it is run as
PAMFILE="/etc/pam.d/$SERVICE"
SHELLS=/etc/segura/shells # where `segura enroll` remembers real shells
RULE="record $REC_GROUP logins"

say() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
# Shows a command, then runs it.
show() {
    local a line="$"
    for a in "$@"; do
        case "$a" in
        *[!A-Za-z0-9_./=:,@%+-]* | "") line="$line '$a'" ;;
        *) line="$line $a" ;;
        esac
    done
    printf '%s\n' "$line"
    "$@"
}

# Checksums of the system files the demo touches and must leave as they were.
etc_sums() {
    sha256sum /etc/passwd /etc/group /etc/shadow /etc/gshadow /etc/subuid /etc/subgid 2>/dev/null || true
    { find /etc/pam.d /etc/segura -type f 2>/dev/null || true; } | sort | xargs -r sha256sum
}

# Removes the demo's users and groups (and their processes and markers), if present.
remove_identities() {
    local u uid pids g
    for u in "$ANN" "$BOB" "$SPOOL_USER"; do
        uid="$(id -u "$u" 2>/dev/null)" || continue
        pids="$(pgrep -u "$uid" || true)"
        if [ -n "$pids" ]; then
            # shellcheck disable=SC2086  # one pid per word
            kill -KILL $pids 2>/dev/null || true
            sleep 0.2
        fi
        rm -rf "/run/segura/armed/$uid"
        if [ "$u" = "$SPOOL_USER" ]; then
            userdel -f "$u" >/dev/null 2>&1 || true
        else
            userdel -r -f "$u" >/dev/null 2>&1 || true
        fi
    done
    for g in "$REC_GROUP" "$OTHER_GROUP" "$SPOOL_USER"; do
        if getent group "$g" >/dev/null; then groupdel "$g" || true; fi
    done
}

say "building segura (release)"
cargo build --release --locked -p segura -p segura-shell -p segura-launch -p pam_segura -p segura-server

DEMO="$(mktemp -d /tmp/segura-demo.XXXXXX)"
chmod 0755 "$DEMO" # world-traversable: the demo users run segura-shell from it
SSHD_PID="" SSH_N_PID="" PAM_CREATED="" ENROLLED="" OK="" SERVER_PID="" PING_WRAPPED=""
SPOOL="$DEMO/spool/spool.db"
CONF="$DEMO/segura.toml"
export SEGURA_CONFIG="$CONF" SEGURA_SPOOL="$SPOOL"
export PATH="$DEMO/bin:$PATH"

# A run that was killed before it could clean up leaves its sshd, users and PAM file behind:
# remove them before taking the "before" picture.
for old in /tmp/segura-demo.*/; do
    old="${old%/}"
    if [ "$old" != "$DEMO" ] && [ -e "$old/bin/segura-shell" ]; then
        # Its setuid shell would outlive the spool owner it belongs to.
        rm -rf "$old/bin" "$old/lib"
        chown -R root:root "$old"
    fi
done
for pidfile in /tmp/segura-demo.*/ssh/sshd.pid; do
    [ -f "$pidfile" ] && [ "$pidfile" != "$DEMO/ssh/sshd.pid" ] || continue
    pid="$(cat "$pidfile")"
    if [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = /usr/sbin/sshd ] &&
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$(dirname "$pidfile")/sshd_config"; then
        say "stopping the sshd an interrupted earlier demo left running (pid $pid)"
        kill "$pid"
    fi
done
if id "$ANN" >/dev/null 2>&1 || id "$BOB" >/dev/null 2>&1 || id "$SPOOL_USER" >/dev/null 2>&1 ||
    getent group "$REC_GROUP" >/dev/null || getent group "$OTHER_GROUP" >/dev/null || [ -e "$PAMFILE" ]; then
    say "removing what an interrupted earlier demo left behind"
    for u in "$ANN" "$BOB"; do
        if grep -q "^$u:" "$SHELLS" 2>/dev/null; then
            "$ROOT/target/release/segura" unenroll "$u" || true
        fi
    done
    rm -f "$PAMFILE"
    rmdir /etc/segura 2>/dev/null || true # only if unenrolling left it empty
    remove_identities
fi

etc_sums >"$DEMO/etc.before"
ETC_SEGURA_EXISTED="" SHELLS_EXISTED="" RUN_SEGURA_EXISTED="" RUN_SSHD_EXISTED=""
[ -d /etc/segura ] && ETC_SEGURA_EXISTED=1
if [ -f "$SHELLS" ]; then
    SHELLS_EXISTED=1
    cp -p "$SHELLS" "$DEMO/shells.orig"
fi
[ -d /run/segura ] && RUN_SEGURA_EXISTED=1
[ -d /run/sshd ] && RUN_SSHD_EXISTED=1

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM HUP
    say "cleaning up (users, groups, PAM service, sshd, enrollment, markers)"
    if [ -n "$SSH_N_PID" ]; then
        kill "$SSH_N_PID" 2>/dev/null
        wait "$SSH_N_PID" 2>/dev/null
    fi
    if [ -n "$SSHD_PID" ]; then
        kill "$SSHD_PID" 2>/dev/null
        wait "$SSHD_PID" 2>/dev/null
        note "sshd stopped"
    fi
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
        note "segura-server stopped (its data stays in $DEMO/platform)"
    fi
    if [ -n "$PING_WRAPPED" ]; then
        segura unwrap /usr/bin/ping >/dev/null && note "/usr/bin/ping unwrapped (restored byte for byte)"
        [ -n "$ETC_SEGURA_EXISTED" ] || rmdir /etc/segura 2>/dev/null
    fi
    if [ -n "$PAM_CREATED" ]; then
        segura setup --remove --services "$SERVICE" >/dev/null 2>&1
        rm -f "$PAMFILE"
        note "$PAMFILE removed"
    fi
    if [ -n "$ENROLLED" ]; then
        segura unenroll "$ANN" "$BOB" >/dev/null
        note "$ANN and $BOB unenrolled"
    fi
    if [ -n "$SHELLS_EXISTED" ]; then
        cp -p "$DEMO/shells.orig" "$SHELLS"
        rm -f "$DEMO/shells.orig"
    else
        rm -f "$SHELLS"
        [ -n "$ETC_SEGURA_EXISTED" ] || rmdir /etc/segura 2>/dev/null
    fi
    remove_identities
    note "users $ANN, $BOB, $SPOOL_USER and groups $REC_GROUP, $OTHER_GROUP, $SPOOL_USER deleted"
    if [ -z "$RUN_SEGURA_EXISTED" ]; then
        rmdir /run/segura/armed /run/segura 2>/dev/null
    fi
    [ -n "$RUN_SSHD_EXISTED" ] || rmdir /run/sshd 2>/dev/null
    # What stays in $DEMO must not be setuid, nor owned by a uid that no longer exists.
    # The installed copies go too (the spool and the cast are read with target/release/segura).
    rm -rf "$DEMO/bin" "$DEMO/lib" "$DEMO/ssh/$SERVICE"
    chown -R root:root "$DEMO"
    etc_sums >"$DEMO/etc.after"
    if cmp -s "$DEMO/etc.before" "$DEMO/etc.after"; then
        note "/etc/passwd, group, shadow, gshadow, subuid, subgid, /etc/pam.d and /etc/segura are as they were"
        rm -f "$DEMO/etc.before" "$DEMO/etc.after"
    else
        note "WARNING: system files differ from before the demo:"
        diff "$DEMO/etc.before" "$DEMO/etc.after" | sed 's/^/      /'
    fi
    if [ -n "$OK" ]; then
        say "done"
        echo "Kept: $DEMO"
        echo "  spool:      $SPOOL   (now owned by root)"
        echo "  asciicast:  $DEMO/ssh-session.cast"
        echo "  replay:     asciinema play $DEMO/ssh-session.cast"
        echo "         or:  $ROOT/target/release/segura --spool $SPOOL play $TT_ID"
        echo "  list:       $ROOT/target/release/segura --spool $SPOOL ls"
        echo "  sshd log:   $DEMO/ssh/sshd.log"
        echo "  platform:   $ROOT/target/release/segura-server admin recordings --data $DEMO/platform"
        echo "  web UI:     $ROOT/target/release/segura-server serve --listen 127.0.0.1:8080 --data $DEMO/platform"
        echo "              then open http://127.0.0.1:8080/ and sign in as admin, password in $DEMO/admin-password"
        echo "              (Remote Sessions, Session Log, Session Video, Audit, Policies, Hosts, Users, Accounts, Access log)"
        echo "Remove it with: rm -rf $DEMO"
    else
        echo "demo: FAILED (exit $rc); what it made is in $DEMO (sshd log: $DEMO/ssh/sshd.log)" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

say "a throwaway installation in $DEMO"
# What `make install` puts in /usr/local/bin, /usr/local/sbin and /lib/MULTIARCH/security.
install -d -m 0755 "$DEMO/bin" "$DEMO/lib"
install -m 0755 target/release/segura "$DEMO/bin/segura"
install -m 0755 target/release/segura-launch "$DEMO/bin/segura-launch"
install -m 0644 target/release/libpam_segura.so "$DEMO/lib/pam_segura.so"
note "segura:        $DEMO/bin/segura"
note "pam_segura.so: $DEMO/lib/pam_segura.so"

say "users and groups"
# The spool owner: a system user nobody logs in as (make install creates `segura`).
useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$SPOOL_USER"
groupadd "$REC_GROUP"
groupadd "$OTHER_GROUP"
useradd -m -s /bin/bash -g "$REC_GROUP" "$ANN"
useradd -m -s /bin/bash -g "$OTHER_GROUP" -G "$REC_GROUP" "$BOB"
for u in "$SPOOL_USER" "$ANN" "$BOB"; do show id "$u"; done

say "configuration and a recording rule"
cat >"$CONF" <<EOF
# segura demo configuration (see etc/segura.toml for every key)
[spool]
path = "$SPOOL"
owner = "$SPOOL_USER"
group = "$SPOOL_USER"

[record]
notice = "This session is recorded by segura."

[upload]
credentials = "$DEMO/host.toml"
EOF
chmod 0644 "$CONF"
note "$CONF: the spool $SPOOL, owned by $SPOOL_USER"
show segura policy add --name "$RULE" --guideline login-session --record yes --group "$REC_GROUP"
show segura policy list
show segura policy check --user "$ANN" --service "$SERVICE"
show segura policy check --user "$BOB" --service "$SERVICE"

say "the platform: segura-server with embedded SQLite on 127.0.0.1, and this host enrolled"
SERVER="$ROOT/target/release/segura-server"
"$SERVER" serve --listen 127.0.0.1:0 --data "$DEMO/platform" >"$DEMO/platform.out" 2>"$DEMO/platform.log" &
SERVER_PID=$!
for _ in $(seq 100); do grep -q '^listening on' "$DEMO/platform.out" && break; sleep 0.1; done
PLATFORM="http://$(sed -n 's/^listening on //p' "$DEMO/platform.out")"
note "segura-server serve --listen 127.0.0.1:0 --data $DEMO/platform   ->  $PLATFORM"
TOKEN="$("$SERVER" admin enroll-token --data "$DEMO/platform" 2>/dev/null | head -1)"
show segura enroll-host --server "$PLATFORM" --token "$TOKEN" --name "segura-demo-host"
HOST_ID="$("$SERVER" admin hosts --json --data "$DEMO/platform" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')"
note "a new host is pending: what it uploads waits in quarantine until an admin approves it"
show "$SERVER" admin approve-host "$HOST_ID" --data "$DEMO/platform"

say "segura-shell, setuid and setgid to $SPOOL_USER, as the login shell of the demo users"
install -o "$SPOOL_USER" -g "$SPOOL_USER" -m 6755 target/release/segura-shell "$DEMO/bin/segura-shell"
show ls -l "$DEMO/bin/segura-shell"
# Every user whose primary group is $REC_GROUP, and bob too: then it is the rule, not the
# shell, that keeps his logins unrecorded.
ENROLLED=1
show segura enroll --shell "$DEMO/bin/segura-shell" --group "$REC_GROUP" "$BOB"
show getent passwd "$ANN" "$BOB"

say "a PAM service for sshd with pam_segura: $PAMFILE"
PAM_CREATED=1
if [ -f /etc/pam.d/sshd ]; then
    cp /etc/pam.d/sshd "$PAMFILE" # the host's own sshd stack
else
    printf '@include common-account\n@include common-session\n' >"$PAMFILE"
fi
chmod 0644 "$PAMFILE"
show segura setup --services "$SERVICE" --module "$DEMO/lib/pam_segura.so" --module-args "config=$CONF"
show tail -n 2 "$PAMFILE"

say "sshd on 127.0.0.1, run as $SERVICE (so PAM uses $PAMFILE)"
SSHDIR="$DEMO/ssh"
install -d -m 0755 "$SSHDIR"
ssh-keygen -q -t ed25519 -N "" -C sgdemo-host -f "$SSHDIR/hostkey"
ssh-keygen -q -t ed25519 -N "" -C sgdemo-client -f "$SSHDIR/client"
cp "$SSHDIR/client.pub" "$SSHDIR/authorized_keys"
chmod 0644 "$SSHDIR/authorized_keys"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat >"$SSHDIR/sshd_config" <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey $SSHDIR/hostkey
PidFile $SSHDIR/sshd.pid
UsePAM yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile $SSHDIR/authorized_keys
StrictModes no
PermitRootLogin no
PrintMotd no
LogLevel VERBOSE
EOF
install -d -m 0755 /run/sshd
ln -sf /usr/sbin/sshd "$SSHDIR/$SERVICE"
"$SSHDIR/$SERVICE" -t -f "$SSHDIR/sshd_config"
"$SSHDIR/$SERVICE" -D -e -f "$SSHDIR/sshd_config" 2>"$SSHDIR/sshd.log" &
SSHD_PID=$!
for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
    kill -0 "$SSHD_PID" 2>/dev/null || { cat "$SSHDIR/sshd.log" >&2; exit 1; }
    sleep 0.1
done
note "listening on 127.0.0.1:$PORT (pid $SSHD_PID, log $SSHDIR/sshd.log)"
note "the ssh commands below also pass -i $SSHDIR/client and options that skip host-key prompts"
SSH_OPTS=(-i "$SSHDIR/client" -p "$PORT" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
    -o BatchMode=yes -o LogLevel=ERROR)

say "$ANN runs a command over ssh (no terminal: pipe mode)"
CMD='echo "hello from $(id -un), primary group $(id -gn)"; uname -sr; echo "this goes to stderr" >&2'
printf "$ ssh -p %s %s@127.0.0.1 '%s' </dev/null\n" "$PORT" "$ANN" "$CMD"
ssh "${SSH_OPTS[@]}" "$ANN@127.0.0.1" "$CMD" </dev/null

say "$ANN logs in interactively (ssh -tt, typed by this script on a pty)"
# The keystrokes come from the here-document; script(1) gives ssh a terminal of 100x30.
type_slowly() {
    sleep "$1"
    while IFS= read -r line; do
        printf '%s\r' "$line"
        sleep 0.4
    done
}
printf '$ ssh -tt -p %s %s@127.0.0.1   (what the client saw: %s)\n' "$PORT" "$ANN" "$DEMO/ssh-tt.client.log"
type_slowly 2 <<EOF | TERM=xterm-256color script -qec "stty cols 100 rows 30; exec ssh -tt ${SSH_OPTS[*]} $ANN@127.0.0.1" /dev/null >"$DEMO/ssh-tt.client.log"
PS1='\u@demo\$ '
echo "interactive: \$(id -un) on \$(tty)"
printf '\033[1;32mcolours\033[0m and UTF-8: caf\303\251\n'
cat $SPOOL
ps -o pid,ruser:12,euser:12,egroup:12,args -p \$PPID,\$\$
exit
EOF
note "$(grep -c '' "$DEMO/ssh-tt.client.log") lines reached the client"

say "$BOB logs in: $REC_GROUP is only his secondary group, so he is NOT recorded"
CMD='echo "$(id -un): primary group $(id -gn), groups $(id -Gn)"'
printf "$ ssh -p %s %s@127.0.0.1 '%s' </dev/null\n" "$PORT" "$BOB" "$CMD"
ssh "${SSH_OPTS[@]}" "$BOB@127.0.0.1" "$CMD" </dev/null

say "$ANN opens a connection with no shell (ssh -N, a tunnel only): armed, nothing to record"
printf '$ ssh -N -p %s %s@127.0.0.1 &  ... then closed 2 s later\n' "$PORT" "$ANN"
ssh "${SSH_OPTS[@]}" -N "$ANN@127.0.0.1" </dev/null &
SSH_N_PID=$!
sleep 2
kill "$SSH_N_PID"
wait "$SSH_N_PID" 2>/dev/null || true
SSH_N_PID=""
sleep 0.5 # sshd closes the PAM session after the connection is gone

say "binary-run rule: every run of ping by $REC_GROUP is recorded, and uploaded when it ends"
show segura policy add --name "record ping" --guideline binary-run --application /usr/bin/ping \
    --record yes --group "$REC_GROUP"
show segura wrap /usr/bin/ping --launcher "$DEMO/bin/segura-launch"
PING_WRAPPED=1
note "the real ping is kept aside with its capability: $(getcap /usr/bin/ping.segura-real)"
printf '$ ping -c 4 127.0.0.1     (as %s, on a terminal)\n' "$ANN"
script -qec "setpriv --reuid $(id -u "$ANN") --regid $(id -g "$ANN") --init-groups -- ping -c 4 -i 0.2 127.0.0.1" /dev/null </dev/null
printf '$ ping -c 1 127.0.0.1     (as %s: the rule is for his secondary group only)\n' "$BOB"
script -qec "setpriv --reuid $(id -u "$BOB") --regid $(id -g "$BOB") --init-groups -- ping -c 1 127.0.0.1" /dev/null </dev/null

say "a standalone recording: segura rec (root, on a pty, no PAM involved)"
printf '$ segura rec -- bash --norc --noprofile -i   (typed by this script, through script(1))\n'
type_slowly 0.5 <<'EOF' | script -qec "stty cols 100 rows 30; exec segura rec -- bash --norc --noprofile -i" /dev/null >/dev/null
PS1='demo$ '
echo "hello from a recorded session"
ls -d /etc/ss*
exit
EOF

say "what was recorded"
show segura ls
echo
show segura ls --logins
TT_ID="$(segura ls --json | python3 -c '
import json, sys
for r in json.load(sys.stdin):
    if r["service"] == sys.argv[1] and r["kind"] == "session":
        print(r["id"]); break' "$SERVICE")"
if [ -z "$TT_ID" ]; then
    echo "demo: no interactive ssh recording found; sshd log:" >&2
    cat "$SSHDIR/sshd.log" >&2
    exit 1
fi
if segura ls --json | grep -q "\"user\": \"$BOB\"" || segura ls --logins --json | grep -q "\"user\": \"$BOB\""; then
    echo "demo: $BOB was recorded, which the rule does not ask for" >&2
    exit 1
fi
note "no recording and no login of $BOB: the rule matches $REC_GROUP as the PRIMARY group only"

say "the interactive ssh session: segura export $TT_ID --format text"
segura export "$TT_ID" --format text
say "segura export $TT_ID --format commands"
segura export "$TT_ID" --format commands
segura export "$TT_ID" --format asciicast -o "$DEMO/ssh-session.cast"
note "asciicast written to $DEMO/ssh-session.cast"

say "segura check && segura status"
segura check >/dev/null && note "every recording's hash chain verifies"
segura status

say "delivering to the platform: segura sync"
show segura sync
segura status | sed -n '1,6p'
say "the platform's view: segura-server admin recordings"
"$SERVER" admin recordings --data "$DEMO/platform"
for id in $(segura ls --json | python3 -c 'import json,sys; [print(r["id"]) for r in json.load(sys.stdin)]'); do
    segura export "$id" --format asciicast -o "$DEMO/local.cast"
    "$SERVER" admin export "$id" --format asciicast --data "$DEMO/platform" >"$DEMO/platform.cast"
    cmp -s "$DEMO/local.cast" "$DEMO/platform.cast" || { echo "demo: the platform's copy of $id differs" >&2; exit 1; }
done
rm -f "$DEMO/local.cast" "$DEMO/platform.cast"
note "every recording on the platform is byte-identical to the local one (asciicast compared)"

say "the platform's web UI: an admin signs in and finds the sessions"
note "recordings belong to the endpoint user with the identical username; approve $ANN (root and $BOB stay flagged)"
show "$SERVER" admin approve-user "$ANN" --data "$DEMO/platform"
ADMIN_PW="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
printf '%s\n' "$ADMIN_PW" | "$SERVER" admin create-user admin --role admin --data "$DEMO/platform"
(umask 077 && printf '%s\n' "$ADMIN_PW" >"$DEMO/admin-password")
curl -fsS -o /dev/null -c "$DEMO/cookies" --data-urlencode name=admin \
    --data-urlencode "password=$ADMIN_PW" --data-urlencode next=/sessions "$PLATFORM/login"
LISTED="$(curl -fsS -b "$DEMO/cookies" "$PLATFORM/sessions" | grep -o 'data-id="' | wc -l)"
note "Remote Sessions lists $LISTED sessions"
[ "$LISTED" -ge 3 ] || { echo "demo: the web UI lists $LISTED sessions" >&2; exit 1; }
curl -fsS -b "$DEMO/cookies" "$PLATFORM/sessions/$TT_ID" | grep -q "interactive: $ANN on" ||
    { echo "demo: the Session Log of $TT_ID lacks what was typed" >&2; exit 1; }
note "the Session Log of the interactive ssh session shows what was typed"
curl -fsS -b "$DEMO/cookies" "$PLATFORM/sessions?service=ping" | grep -q 'ping -c 4' ||
    { echo "demo: the ping run is not in the web UI" >&2; exit 1; }
note "the recorded ping run is there too (filter: service or binary = ping)"
curl -fsS -b "$DEMO/cookies" "$PLATFORM/audit?program=ping" | grep -q 'ping -c 4' ||
    { echo "demo: the ping run is not on the Audit page" >&2; exit 1; }
note "and on the Audit page, with its exit status and duration"
rm -f "$DEMO/cookies"
show ls -l "$DEMO/spool"
OK=1
