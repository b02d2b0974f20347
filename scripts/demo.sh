#!/bin/sh
# The segura demo: builds segura, records a short scripted terminal session into a temporary
# spool through a real pty, lists it, and prints its transcript and command list. Run as root
# on Debian 12; installs what it needs first.
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh
echo "==> building segura (release)"
cargo build --release --locked --workspace --bins
SEGURA="$(pwd)/target/release/segura"
DEMO="$(mktemp -d /tmp/segura-demo.XXXXXX)"
export SEGURA_SPOOL="$DEMO/spool.db" SEGURA_CONFIG="$DEMO/segura.toml"
printf '[record]\nnotice = "This session is recorded by segura."\n' > "$SEGURA_CONFIG"

echo "==> recording an interactive bash session on a pty (typed by a script)"
# script(1) gives the recorder a real terminal; the keystrokes come from this here-document.
type_slowly() {
    sleep 0.5
    while IFS= read -r line; do
        printf '%s\r' "$line"
        sleep 0.3
    done <<'KEYS'
PS1='demo$ '
echo "hello from a recorded session"
printf '\033[1;32mcolours\033[0m and UTF-8: caf\303\251\n'
ls -d /etc/ss*
exit
KEYS
}
type_slowly | script -qec "$SEGURA rec -- bash --norc --noprofile -i" /dev/null >/dev/null

echo "==> segura ls"
"$SEGURA" ls
ID="$("$SEGURA" ls --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')"
echo
echo "==> segura export $ID --format text   (the transcript, as the screen showed it)"
"$SEGURA" export "$ID" --format text
echo "==> segura export $ID --format commands"
"$SEGURA" export "$ID" --format commands
"$SEGURA" export "$ID" --format asciicast -o "$DEMO/session.cast"
echo
echo "==> segura status"
"$SEGURA" status
echo
echo "The spool is $SEGURA_SPOOL."
echo "Replay it:   SEGURA_SPOOL=$SEGURA_SPOOL $SEGURA play $ID"
echo "asciicast:   $DEMO/session.cast   (asciinema play $DEMO/session.cast)"
