#!/bin/sh
# Builds the Debian packages from this checkout:
#   target/debian/segura_VERSION_ARCH.deb          agent: PAM module, segura, segura-shell,
#                                                   segura-launch, sync units, configuration
#   target/debian/segura-server_VERSION_ARCH.deb   the platform's collector and its unit
# VERSION is the workspace's version with a "-1" Debian revision unless SEGURA_DEB_VERSION says
# otherwise; OUT_DIR another output directory. SEGURA_DEB_NO_BUILD=1 packages the binaries already
# in target/release (the package test uses it to make a lower version of the same build to upgrade
# from). Needs dpkg-dev (deps.sh).
set -eu
cd "$(dirname "$0")/.."
SRC=$(pwd)
TARGET=${CARGO_TARGET_DIR:-$SRC/target}
OUT=${OUT_DIR:-$TARGET/debian}
REL=$TARGET/release
CRATE_VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
VERSION=${SEGURA_DEB_VERSION:-$CRATE_VERSION-1}
ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH)

if [ -z "${SEGURA_DEB_NO_BUILD:-}" ]; then
    # The web player the server embeds (once it exists) is built from its lockfile first.
    if [ -f server/web/package.json ]; then
        npm ci --prefix server/web
    fi
    cargo build --release --locked -p segura -p segura-shell -p segura-launch -p pam_segura -p segura-server
fi
# Reproducible: timestamps from the last commit, no user names, sorted archives. Set only now:
# some build scripts track SOURCE_DATE_EPOCH, and a new value would rebuild everything.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH
for b in segura segura-shell segura-launch libpam_segura.so segura-server; do
    [ -f "$REL/$b" ] || { echo "deb.sh: $REL/$b is missing (build first)" >&2; exit 1; }
done

rm -rf "$OUT/stage"
mkdir -p "$OUT/stage"
SCHEMA=$("$REL/segura" spool-schema)
MAN=$OUT/stage/man
"$REL/segura" man-pages "$MAN/segura" >/dev/null
"$REL/segura-server" man-pages "$MAN/server" >/dev/null

# bin FILE DEST MODE: a stripped copy of a built binary.
bin() {
    install -D -m "$3" "$1" "$2"
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$2"
}
# man DIR SECTION FILES...: gzip'd manual pages.
man() {
    d=$1/usr/share/man/man$2
    shift 2
    mkdir -p "$d"
    for f in "$@"; do
        gzip -9n <"$f" >"$d/$(basename "$f").gz"
    done
}
# doc PKG FILE...: documentation, gzip'd when larger than 4 KiB, as Debian does.
doc() {
    d=$1/usr/share/doc/$(basename "$1")
    shift
    mkdir -p "$d"
    for f in "$@"; do
        if [ "$(stat -c %s "$f")" -gt 4096 ]; then
            gzip -9n <"$f" >"$d/$(basename "$f").gz"
        else
            install -m 0644 "$f" "$d/"
        fi
    done
    cat >"$d/copyright" <<COPY
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: segura
Source: https://example.invalid/segura

Files: *
Copyright: segura developers
License: Apache-2.0
 On Debian systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
COPY
}
# control PKG DIR BINARIES...: DEBIAN/ with the control file (dependencies from dpkg-shlibdeps),
# the maintainer scripts and md5sums.
control() {
    pkg=$1 root=$2
    shift 2
    mkdir -p "$root/DEBIAN" "$OUT/stage/shlibs/debian"
    printf 'Source: segura\n\nPackage: %s\nArchitecture: any\n' "$pkg" >"$OUT/stage/shlibs/debian/control"
    shlibs=$(cd "$OUT/stage/shlibs" && for b in "$@"; do printf ' -e%s' "$root/$b"; done | xargs dpkg-shlibdeps -O 2>/dev/null \
        | sed -n 's/^shlibs:Depends=//p')
    [ -n "$shlibs" ] || { echo "deb.sh: dpkg-shlibdeps found no dependencies for $pkg" >&2; exit 1; }
    size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
    sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$size/" -e "s/@SHLIBS@/$shlibs/" \
        "packaging/debian/$pkg/control.in" >"$root/DEBIAN/control"
    for s in preinst postinst prerm postrm; do
        if [ -f "packaging/debian/$pkg/$s" ]; then
            sed -e "s/@SCHEMA_VERSION@/$SCHEMA/" -e "s/@VERSION@/$VERSION/" "packaging/debian/$pkg/$s" >"$root/DEBIAN/$s"
            chmod 0755 "$root/DEBIAN/$s"
        fi
    done
    (cd "$root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -print | sed 's|^\./||' \
        | LC_ALL=C sort | xargs md5sum >DEBIAN/md5sums)
    if [ -d "$root/etc" ]; then
        (cd "$root" && find etc -type f | LC_ALL=C sort | sed 's|^|/|') >"$root/DEBIAN/conffiles"
    fi
}
build() {
    find "$1" -newermt "@$SOURCE_DATE_EPOCH" -print0 | xargs -0r touch --no-dereference --date="@$SOURCE_DATE_EPOCH"
    dpkg-deb --root-owner-group -Zxz --build "$1" "$OUT/$2_${VERSION}_$ARCH.deb" >/dev/null
    echo "$OUT/$2_${VERSION}_$ARCH.deb"
}

# segura
R=$OUT/stage/segura
bin "$REL/segura" "$R/usr/bin/segura" 0755
bin "$REL/segura-shell" "$R/usr/sbin/segura-shell" 0755
bin "$REL/segura-launch" "$R/usr/sbin/segura-launch" 0755
bin "$REL/libpam_segura.so" "$R/lib/$MULTIARCH/security/pam_segura.so" 0644
install -d -m 0755 "$R/etc/segura"
sed -e 's/^# owner = "segura"/owner = "segura"/' -e 's/^# group = "segura"/group = "segura"/' \
    etc/segura.toml >"$R/etc/segura/segura.toml"
chmod 0644 "$R/etc/segura/segura.toml"
install -D -m 0644 etc/segura-sync.timer "$R/lib/systemd/system/segura-sync.timer"
sed 's|/usr/local/bin/segura|/usr/bin/segura|' etc/segura-sync.service >"$R/lib/systemd/system/segura-sync.service"
chmod 0644 "$R/lib/systemd/system/segura-sync.service"
install -D -m 0644 packaging/debian/segura.pam-config "$R/usr/share/pam-configs/segura"
man "$R" 8 "$MAN"/segura/*.8 packaging/man/segura-shell.8 packaging/man/pam_segura.8
man "$R" 5 packaging/man/segura.toml.5
doc "$R" README.md docs/sysadmin.md docs/format.md etc/pam.d-segura.example
control segura "$R" usr/bin/segura usr/sbin/segura-shell usr/sbin/segura-launch "lib/$MULTIARCH/security/pam_segura.so"
build "$R" segura

# segura-server
R=$OUT/stage/segura-server
bin "$REL/segura-server" "$R/usr/bin/segura-server" 0755
install -D -m 0644 etc/segura-server.service "$R/lib/systemd/system/segura-server.service"
install -D -m 0644 etc/segura-server.default "$R/etc/default/segura-server"
man "$R" 8 "$MAN"/server/*.8
doc "$R" server/README.md
control segura-server "$R" usr/bin/segura-server
build "$R" segura-server
