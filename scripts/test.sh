#!/bin/sh
# Runs every check and test of segura: formatting, lints, unit tests and the end-to-end tests
# (real ptys, real pipes, the real asciinema client), then the Debian packages: built
# (scripts/deb.sh) and installed, upgraded, downgraded and purged in a clean Debian 12 root
# (scripts/deb-test.sh). Run as root on Debian 12; installs what it needs first. CI runs exactly
# this (.ci/run).
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The end-to-end tests run the built binaries: build them first.
cargo build --workspace --all-targets --locked
cargo test --workspace --locked
# The packages, in a debootstrapped Debian 12 (cached under target/deb-test after the first run).
./scripts/deb-test.sh
