#!/bin/sh
# Installs what building, the demo, the tests and the Debian packages (scripts/deb.sh,
# scripts/deb-test.sh: dpkg-dev, debootstrap) need on Debian 12 (run as root).
# Idempotent: apt only installs what is missing.
set -eu
export DEBIAN_FRONTEND=noninteractive
PKGS="build-essential pkg-config libpam0g-dev libcurl4-openssl-dev asciinema python3 sqlite3 iproute2 procps pamtester openssh-server openssh-client sshpass login passwd util-linux iputils-ping libcap2-bin valgrind curl chromium chromium-driver debootstrap dpkg-dev binutils gzip xz-utils"
# Node.js and npm install the web player (server/web); Debian's packages when none is there.
command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "segura: missing Debian packages:$missing (run this as root to install them)" >&2
        exit 1
    fi
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "segura: cargo not found; install the Rust toolchain (rustup or Debian's cargo)" >&2
    exit 1
fi
# The web UI's player, from the npm registry, at the version package-lock.json pins
# (server/build.rs embeds it into segura-server).
web="$(dirname "$0")/../server/web"
if [ ! -f "$web/node_modules/asciinema-player/dist/bundle/asciinema-player.min.js" ] \
    || [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
    npm ci --prefix "$web" --no-audit --no-fund --loglevel=error
fi
