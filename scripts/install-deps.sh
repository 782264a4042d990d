#!/usr/bin/env bash
# Installs the Debian packages needed to build and test mod_wsgi-rs, only
# those missing (so a second run does not touch apt at all).
set -euo pipefail
# dpkg-dev and binutils: scripts/build-deb.sh (dpkg-shlibdeps, strip, readelf).
# gdb: the test harness prints backtraces of core files when a test fails.
# libapache2-mod-wsgi-py3: the C mod_wsgi, which tests/conformance.rs runs
# side by side with this module and compares against.
pkgs=(apache2 apache2-dev python3-dev libclang-dev clang python3-venv curl ca-certificates
    dpkg-dev binutils gdb libapache2-mod-wsgi-py3)
missing=()
for p in "${pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" != 0 ]; then
        echo "Missing packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    echo "Installing: ${missing[*]}"
    apt-get update -qq
    # Debian's apache2 postinst may try to start the system Apache; it is
    # harmless for the tests (they use their own ports) but keep it quiet.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is not installed: install Rust (https://rustup.rs) first" >&2
    exit 1
fi
