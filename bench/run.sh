#!/usr/bin/env bash
# The benchmark: mod_wsgi-rs against the C mod_wsgi (Debian's
# libapache2-mod-wsgi-py3), gunicorn and Granian, in one run.
#
#   bench/run.sh                        # every variant, every workload, 3 rounds of 10 s
#   bench/run.sh --quick                # 1 round of 3 s, a subset of variants (smoke test)
#   bench/run.sh --variants rs-embedded,c-embedded --workloads hello-16,django
#   bench/run.sh --rounds 5 --duration 20 --keep
#
# As root on Debian 12. Installs the Debian packages it needs (apache2,
# apache2-dev, libapache2-mod-wsgi-py3, wrk, ...), a virtualenv with gunicorn,
# Granian, Flask and Django (BENCH_VENV, default bench/.venv), builds the
# module with `cargo build --release` (or uses BENCH_MODULE=/path/to.so),
# then runs bench/driver.py. Never touches /etc/apache2 or the system Apache:
# every server gets its own config, pid file and logs in a directory under
# /var/tmp, listens on 127.0.0.1 only, and is stopped by PID at the end, also
# on failure or Ctrl-C. Results: bench/results/results.{md,svg,json}.
set -euo pipefail
umask 022

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
python=/usr/bin/python3
venv=${BENCH_VENV:-$here/.venv}

step() { printf '==> %s\n' "$*"; }
die() { printf 'bench/run.sh: error: %s\n' "$*" >&2; exit 1; }

for arg in "$@"; do
    case $arg in -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;; esac
done
[ "$(id -u)" = 0 ] || die "run me as root: I install packages and Apache switches its children to www-data."

# --- 1. Debian packages -----------------------------------------------------
packages=(apache2 apache2-dev python3-dev python3-venv libclang-dev clang libapache2-mod-wsgi-py3 wrk)
command -v cc >/dev/null 2>&1 || packages+=(gcc libc6-dev)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    step "Installing ${missing[*]} (this may enable mod_wsgi in /etc/apache2; the system Apache is never started)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
fi

# --- 2. The virtualenv (gunicorn, Granian, Flask, Django) --------------------
if [ ! -x "$venv/bin/python" ]; then
    step "Creating the virtualenv $venv"
    "$python" -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import gunicorn, granian, flask, django' 2>/dev/null ||
   ! cmp -s "$here/requirements.txt" "$venv/.bench-requirements.txt"; then
    step "Installing $here/requirements.txt into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$venv/.bench-requirements.txt"
fi
# Apache's children (www-data) import Flask and Django from it.
su -s /bin/sh www-data -c "test -r '$venv/pyvenv.cfg'" </dev/null ||
    die "www-data cannot read $venv: set BENCH_VENV to a directory outside /root (e.g. /var/tmp/mod_wsgi-rs-bench-venv)."

# --- 3. The module -------------------------------------------------------------
if [ -n "${BENCH_MODULE:-}" ]; then
    module=$BENCH_MODULE
    [ -f "$module" ] || die "BENCH_MODULE=$module does not exist."
else
    cargo=$(command -v cargo 2>/dev/null || echo "$HOME/.cargo/bin/cargo")
    [ -x "$cargo" ] || die "cargo not found: install Rust (https://rustup.rs)."
    step "Building the module (cargo build --release)"
    (cd "$repo" && PYO3_PYTHON=$python "$cargo" build --release --lib)
    module=$repo/target/release/libmod_wsgi_rs.so
fi

# --- 4. Run, and stop whatever was started whatever happens ----------------
pidfile=$(mktemp /var/tmp/mod_wsgi-rs-bench-pids.XXXXXX)
cleanup() {
    # The driver stops its servers itself; this catches what is left if it
    # was killed. Only PIDs it recorded, only if they still look like ours.
    local pid cmd
    while read -r pid; do
        [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || continue
        cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
        case $cmd in
            *apache2*|*gunicorn*|*granian*|*wsgi*) kill -KILL "$pid" 2>/dev/null || true ;;
        esac
    done <"$pidfile"
    rm -f "$pidfile"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "Running the benchmark"
status=0
"$python" "$here/driver.py" --venv "$venv" --rs-module "$module" --pidfile "$pidfile" --argv="$*" "$@" || status=$?
exit $status
