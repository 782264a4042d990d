#!/usr/bin/env bash
# Serve every example in examples/ with mod_wsgi-rs on http://127.0.0.1:8000/
#
#   scripts/serve-examples.sh            # build, set up, run Apache in the foreground
#   scripts/serve-examples.sh --check    # ... start it, fetch every example, stop it
#   scripts/serve-examples.sh --daemon   # run the apps in a WSGIDaemonProcess group
#
# Meant for a fresh Debian 12 (or Ubuntu) machine, as root. It installs the
# Debian packages that are missing, builds the module with cargo, creates the
# virtualenvs the examples need (pip install from PyPI), writes an Apache
# config into a runtime directory and starts /usr/sbin/apache2 with it. Run it
# again and it reuses what is already there.
#
# Environment:
#   SERVE_CHECK=1                 same as --check
#   SERVE_DAEMON=1                same as --daemon
#   SERVE_PORT=8000               the port on 127.0.0.1
#   SERVE_RUNTIME_DIR=DIR         config, logs, pid file (and copies, see below);
#                                 default /var/tmp/mod_wsgi-rs-examples
#   SERVE_MODULE=/path/to.so      use this built module, do not run cargo
#   SERVE_COPY=1                  serve a copy of examples/ even if www-data can
#                                 read the repository
#   MOD_WSGI_RS_EXAMPLES_VENV=DIR the virtualenv (made with the 'virtualenv'
#                                 package) that examples/virtualenv/application
#                                 activates; default <examples>/.venv
#
# Apache's children run as www-data. When www-data cannot read the repository
# (a clone under /root, which is mode 700), the examples and the module are
# copied into the runtime directory and served from there.
set -euo pipefail
umask 022

say() { printf '%s\n' "$*"; }
step() { printf '==> %s\n' "$*"; }
die() { printf 'serve-examples.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

check=${SERVE_CHECK:-0}
daemon=${SERVE_DAEMON:-0}
for arg in "$@"; do
    case $arg in
        --check) check=1 ;;
        --daemon) daemon=1 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$arg' (try --help)" ;;
    esac
done
[ "$check" = 0 ] || check=1
[ "$daemon" = 0 ] || daemon=1

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
port=${SERVE_PORT:-8000}
listen=127.0.0.1
runtime=${SERVE_RUNTIME_DIR:-/var/tmp/mod_wsgi-rs-examples}
apache_user=www-data
apache_group=www-data
# Debian's Python: www-data cannot read a pyenv Python under /root, and the
# module is built against this one.
python=/usr/bin/python3
apache=/usr/sbin/apache2

[ "$(id -u)" = 0 ] || die "run me as root (sudo $0): I install packages and Apache
  switches its children to $apache_user."

# --- 1. Debian packages -----------------------------------------------------
step "Checking Debian packages"
packages=(apache2 apache2-dev python3-dev python3-venv libclang-dev clang curl)
# rustc links through 'cc'; a machine with Rust but no C toolchain needs one.
command -v cc >/dev/null 2>&1 || packages+=(gcc libc6-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    step "Installing ${missing[*]}"
    command -v apt-get >/dev/null 2>&1 ||
        die "apt-get not found: install ${missing[*]} by hand (this script knows Debian/Ubuntu)."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
fi
[ -x "$apache" ] || die "$apache not found although apache2 is installed."
[ -x "$python" ] || die "$python not found (apt-get install python3)."
getent passwd "$apache_user" >/dev/null || die "user $apache_user does not exist."
moddir=$(apxs -q LIBEXECDIR)
[ -f "$moddir/mod_mpm_event.so" ] || die "$moddir/mod_mpm_event.so not found."

# --- 2. The module ------------------------------------------------------------
if [ -n "${SERVE_MODULE:-}" ]; then
    built=$SERVE_MODULE
    [ -f "$built" ] || die "SERVE_MODULE=$built does not exist."
    step "Using the module $built"
else
    cargo=$(command -v cargo 2>/dev/null || true)
    [ -n "$cargo" ] || { [ -x "$HOME/.cargo/bin/cargo" ] && cargo=$HOME/.cargo/bin/cargo; } ||
        die "cargo not found: install Rust (https://rustup.rs) and run me again."
    step "Building the module (cargo build --release)"
    (cd "$repo" && PYO3_PYTHON=$python "$cargo" build --release)
    built=$repo/target/release/libmod_wsgi_rs.so
    [ -f "$built" ] || die "cargo did not produce $built."
fi

# --- 3. Where the examples are served from ---------------------------------
mkdir -p "$runtime/run"
chmod 755 "$runtime" "$runtime/run"

as_apache() { su -s /bin/sh "$apache_user" -c "$1" </dev/null; }

# True when the Apache user can read every file under $1 (virtualenvs aside).
apache_can_read() {
    local d=$1
    as_apache "test -r '$d/index.wsgi' && test -x '$d/hello'" 2>/dev/null || return 1
    local bad
    bad=$(as_apache "find '$d' \\( -name .venv -o -name .pyhome -o -name __pycache__ \\) -prune \
        -o ! -readable -print -quit" 2>/dev/null) || return 1
    [ -z "$bad" ]
}

src=$repo/examples
if [ "${SERVE_COPY:-0}" != 1 ] && apache_can_read "$src"; then
    examples=$src
    module=$built
    step "Serving $examples in place ($apache_user can read it)"
else
    examples=$runtime/examples
    module=$runtime/mod_wsgi_rs.so
    step "$apache_user cannot read $src (or SERVE_COPY=1): serving a copy in $examples"
    mkdir -p "$examples"
    # Replace everything but the virtualenvs, which are kept for the next run.
    find "$examples" -mindepth 1 -maxdepth 1 ! -name .venv ! -name .pyhome -exec rm -rf {} +
    tar -C "$src" --exclude=./.venv --exclude=./.pyhome --exclude=__pycache__ -cf - . |
        tar -C "$examples" --no-same-owner -xf -
    chmod -R a+rX "$examples"
    # Like apxs -i: a new inode, so an Apache still running keeps the old one.
    cp "$built" "$module.tmp.$$" && chmod 644 "$module.tmp.$$" && mv -f "$module.tmp.$$" "$module"
    apache_can_read "$examples" || die "$apache_user cannot read $examples either: is a parent
  directory of $runtime closed to it?"
fi

# --- 4. Virtualenvs ------------------------------------------------------------
# .pyhome: WSGIPythonHome for the whole server, made by python3 -m venv, with
#          Flask, Django and the 'virtualenv' package.
# .venv:   made by the 'virtualenv' package (python3 -m venv writes no
#          bin/activate_this.py), activated by examples/virtualenv/application.
pyhome=$examples/.pyhome
venv=${MOD_WSGI_RS_EXAMPLES_VENV:-$examples/.venv}

if "$pyhome/bin/python" -c 'import flask, django, virtualenv' 2>/dev/null; then
    step "Reusing $pyhome"
else
    step "Creating $pyhome (python3 -m venv; pip install flask django virtualenv)"
    "$python" -m venv --clear "$pyhome"
    "$pyhome/bin/python" -m pip install --quiet --upgrade pip
    "$pyhome/bin/python" -m pip install --quiet flask django virtualenv
fi

if [ -f "$venv/bin/activate_this.py" ] && "$venv/bin/python" -c 'import flask' 2>/dev/null; then
    step "Reusing $venv"
else
    step "Creating $venv (virtualenv, for activate_this.py; pip install flask)"
    "$pyhome/bin/python" -m virtualenv --quiet --clear --python "$python" "$venv"
    "$venv/bin/python" -m pip install --quiet flask
fi
[ -f "$venv/bin/activate_this.py" ] || die "$venv/bin/activate_this.py is missing."
chmod -R a+rX "$pyhome" "$venv"
as_apache "test -r '$venv/bin/activate_this.py' && test -x '$pyhome/bin/python'" ||
    die "$apache_user cannot read $venv or $pyhome: choose a MOD_WSGI_RS_EXAMPLES_VENV it can read."
# Apache's children inherit this; the application file reads it.
export MOD_WSGI_RS_EXAMPLES_VENV=$venv

# --- 5. The Apache configuration -------------------------------------------
conf=$runtime/httpd.conf
errlog=$runtime/error_log
pidfile=$runtime/httpd.pid
sed -e "s|@RUNTIME@|$runtime|g" \
    -e "s|@EXAMPLES@|$examples|g" \
    -e "s|@MODULE@|$module|g" \
    -e "s|@MODDIR@|$moddir|g" \
    -e "s|@PYTHON_HOME@|$pyhome|g" \
    -e "s|@USER@|$apache_user|g" \
    -e "s|@GROUP@|$apache_group|g" \
    -e "s|@LISTEN@|$listen|g" \
    -e "s|@PORT@|$port|g" \
    "$src/httpd.conf.in" >"$conf.tmp"
mv -f "$conf.tmp" "$conf"

defines=()
[ "$daemon" = 0 ] || defines+=(-DWSGI_DAEMON)

# An Apache left running by an earlier run of this script (same config file):
# stop it by its pid.
if [ -f "$pidfile" ]; then
    old=$(cat "$pidfile" 2>/dev/null || true)
    if [ -n "$old" ] && [ -r "/proc/$old/cmdline" ] &&
        tr '\0' ' ' <"/proc/$old/cmdline" | grep -qF -- "$conf"; then
        step "Stopping the Apache of an earlier run (pid $old)"
        kill -TERM "$old" 2>/dev/null || true
        for _ in $(seq 1 100); do [ -d "/proc/$old" ] || break; sleep 0.1; done
    fi
fi
if command -v ss >/dev/null 2>&1 && ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
    die "port $port is already in use (SERVE_PORT=... to pick another)."
fi

"$apache" -f "$conf" "${defines[@]}" -t 2>&1 | grep -v '^Syntax OK$' >&2 || true
"$apache" -f "$conf" "${defines[@]}" -t >/dev/null 2>&1 || die "Apache rejects $conf (see above)."

url=http://$listen:$port/
: >>"$errlog"
log_start=$(wc -l <"$errlog")

apache_pid=
stop_apache() {
    [ -n "$apache_pid" ] || return 0
    if kill -0 "$apache_pid" 2>/dev/null; then
        kill -TERM "$apache_pid" 2>/dev/null || true
        for _ in $(seq 1 150); do kill -0 "$apache_pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$apache_pid" 2>/dev/null; then
            say "Apache (pid $apache_pid) did not stop in 15 s: killing it" >&2
            kill -KILL "$apache_pid" 2>/dev/null || true
        fi
    fi
    wait "$apache_pid" 2>/dev/null || true
    apache_pid=
}

# Apache gets a session of its own: signals for this script (Ctrl-C included)
# reach Apache only through stop_apache, by its pid, and Apache's own
# process-group signals never reach this script. setsid execs Apache in place,
# so $! is Apache's pid.
start_apache() {
    setsid "$apache" -f "$conf" "${defines[@]}" -DFOREGROUND </dev/null &
    apache_pid=$!
}

# --- 6a. Serve in the foreground ------------------------------------------------
if [ "$check" = 0 ]; then
    say
    say "Serving the mod_wsgi-rs examples at $url"
    say "  Error log : $errlog"
    say "  Config    : $conf"
    say "  Examples  : $examples"
    [ "$daemon" = 0 ] || say "  Mode      : daemon (WSGIDaemonProcess examples)"
    say "Press Ctrl-C to stop."
    say
    trap 'stop_apache; exit 130' INT
    trap 'stop_apache; exit 143' TERM
    start_apache
    rc=0
    wait "$apache_pid" || rc=$?
    apache_pid=
    exit "$rc"
fi

# --- 6b. --check: start, fetch every example, stop -----------------------------
trap 'stop_apache' EXIT
start_apache
step "Started Apache (pid $apache_pid), waiting for $url"
up=0
for _ in $(seq 1 150); do
    if curl -s -o /dev/null --max-time 2 "$url"; then up=1; break; fi
    kill -0 "$apache_pid" 2>/dev/null || break
    sleep 0.2
done
if [ "$up" != 1 ]; then
    say "Apache did not answer on $url. Error log:" >&2
    tail -n 40 "$errlog" >&2
    exit 1
fi

failures=0
body_file=$runtime/check-body
# probe DESCRIPTION EXPECTED_STATUS EXPECTED_TEXT URL_PATH [curl args...]
probe() {
    local what=$1 want_status=$2 want_text=$3 path=$4
    shift 4
    local status
    status=$(curl -s -o "$body_file" -w '%{http_code}' --max-time 30 "$@" "http://$listen:$port$path") ||
        status="curl-failed"
    if [ "$status" = "$want_status" ] && grep -qF -- "$want_text" "$body_file"; then
        printf '  ok    %-4s %-28s %s\n' "$status" "$path" "$what"
    else
        printf '  FAIL  %-4s %-28s %s: expected %s and "%s", got:\n' \
            "$status" "$path" "$what" "$want_status" "$want_text"
        head -c 600 "$body_file" | sed 's/^/        /'
        echo
        failures=$((failures + 1))
    fi
}

step "Fetching the examples"
head -c 1048576 /dev/zero | tr '\0' x >"$runtime/check-upload"
probe "landing page"          200 'mod_wsgi-rs examples'           /
probe "raw WSGI hello world"  200 'Hello World!'                   /hello
probe "Flask"                 200 'Hello, I love Flask!'           /flask/
probe "Flask + Jinja2"        200 '<h1>Hello, Apache &amp; co!</h1>' '/flask/greet/Apache%20&%20co'
probe "Flask POST body"       200 '"body":"a=1&b=two"'             /flask/echo -d 'a=1&b=two'
probe "Flask large POST"      200 '"length":1048576'               /flask/echo \
    -H 'Content-Type: application/octet-stream' --data-binary "@$runtime/check-upload"
probe "Flask print()"         200 'printed a line'                 /flask/print
probe "virtualenv (activate_this.py)" 200 'activated by activate_this.py' /venv/
probe "Django"                200 'Hello from Django!'             /django/
probe "unknown URL"           404 'Not Found'                      /no/such/page

# The error log since this start: anything above warn, or a traceback, fails.
new_log=$(tail -n +"$((log_start + 1))" "$errlog")
if ! grep -qF 'hello from print() in the Flask example' <<<"$new_log"; then
    say "  FAIL  print() output did not reach the error log"
    failures=$((failures + 1))
fi
# (print() output is logged at level error, as C mod_wsgi does.)
bad_log=$(grep -E ':(error|crit|alert|emerg)\]|Traceback' <<<"$new_log" |
    grep -vF 'hello from print() in the Flask example' || true)
if [ -n "$bad_log" ]; then
    say "  FAIL  the error log has errors:"
    sed 's/^/        /' <<<"$bad_log" | head -n 40
    failures=$((failures + 1))
fi

stop_apache
trap - EXIT
# Apache gives its children 10 s to exit on SIGTERM, then kills them.
if tail -n +"$((log_start + 1))" "$errlog" | grep -q 'AH0004[56]: child process .* still did not exit'; then
    say "  WARN  Apache's children did not exit on SIGTERM and were killed (see the error log)"
fi
say
say "Error log: $errlog"
if [ "$failures" -ne 0 ]; then
    say "$failures check(s) failed."
    exit 1
fi
say "All examples answered as expected."
