#!/usr/bin/env bash
# Serve every example in examples/ with wsgi-express on http://127.0.0.1:8000/
#
#   scripts/serve-examples.sh                  # build, set up, run wsgi-express in the foreground
#   scripts/serve-examples.sh --embedded-mode  # ... with the apps in Apache's children
#   scripts/serve-examples.sh --check          # start it, fetch every example, stop it;
#                                              # in daemon mode, then in embedded mode
#
# Meant for a fresh Debian 12 (or Ubuntu) machine, as root. It installs the
# Debian packages that are missing, builds the module and wsgi-express with
# cargo, creates the virtualenvs the examples need (pip install from PyPI)
# and runs
#
#   wsgi-express start-server examples/flask/hello.wsgi --mount-point /flask \
#       --include-file examples/wsgi-express.conf ...
#
# which serves the Flask example and mounts the others with the
# WSGIScriptAlias lines of examples/wsgi-express.conf (the command is printed
# in full before it runs). Run the script again and it reuses what is there.
#
# Environment:
#   SERVE_CHECK=1                 same as --check
#   SERVE_EMBEDDED=1              same as --embedded-mode
#   SERVE_PORT=8000               the port on 127.0.0.1
#   SERVE_RUNTIME_DIR=DIR         wsgi-express's server root is DIR/express
#                                 (config, logs, pid file); copies go to DIR
#                                 (see below); default /var/tmp/mod_wsgi-rs-examples
#   SERVE_TARGET=DIR              use the wsgi-express and libmod_wsgi_rs.so
#                                 built in DIR (e.g. target/debug), no cargo
#   SERVE_COPY=1                  serve a copy of examples/ even if www-data can
#                                 read the repository
#   MOD_WSGI_RS_EXAMPLES_VENV=DIR the virtualenv (made with the 'virtualenv'
#                                 package) that examples/virtualenv/application
#                                 activates; default <examples>/.venv
#
# Apache's children run as www-data. When www-data cannot read the repository
# (a clone under /root, which is mode 700), the examples are copied into the
# runtime directory and served from there.
set -euo pipefail
umask 022

say() { printf '%s\n' "$*"; }
step() { printf '==> %s\n' "$*"; }
die() { printf 'serve-examples.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

check=${SERVE_CHECK:-0}
embedded=${SERVE_EMBEDDED:-0}
mode_given=0
[ "$embedded" = 0 ] || mode_given=1
for arg in "$@"; do
    case $arg in
        --check) check=1 ;;
        --embedded-mode) embedded=1; mode_given=1 ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument '$arg' (try --help)" ;;
    esac
done
[ "$check" = 0 ] || check=1
[ "$embedded" = 0 ] || embedded=1

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
port=${SERVE_PORT:-8000}
listen=127.0.0.1
runtime=${SERVE_RUNTIME_DIR:-/var/tmp/mod_wsgi-rs-examples}
server_root=$runtime/express
apache_user=www-data
# Debian's Python: www-data cannot read a pyenv Python under /root, and the
# module is built against this one.
python=/usr/bin/python3

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
[ -x "$python" ] || die "$python not found (apt-get install python3)."
getent passwd "$apache_user" >/dev/null || die "user $apache_user does not exist."

# --- 2. wsgi-express and the module -------------------------------------------
if [ -n "${SERVE_TARGET:-}" ]; then
    built=$SERVE_TARGET
    step "Using wsgi-express and the module built in $built"
else
    cargo=$(command -v cargo 2>/dev/null || true)
    [ -n "$cargo" ] || { [ -x "$HOME/.cargo/bin/cargo" ] && cargo=$HOME/.cargo/bin/cargo; } ||
        die "cargo not found: install Rust (https://rustup.rs) and run me again."
    step "Building the module and wsgi-express (cargo build --release)"
    (cd "$repo" && PYO3_PYTHON=$python "$cargo" build --release --lib --bin wsgi-express)
    built=${CARGO_TARGET_DIR:-$repo/target}/release
fi
express=$built/wsgi-express
[ -x "$express" ] || die "$express does not exist (build it first)."
# wsgi-express loads the module that sits next to it; Apache's parent
# (root) maps it before its children switch to $apache_user.
[ -f "$built/libmod_wsgi_rs.so" ] || die "$built/libmod_wsgi_rs.so does not exist."
unset MOD_WSGI_RS_SO

# --- 3. Where the examples are served from ---------------------------------
mkdir -p "$runtime"
chmod 755 "$runtime"

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
    step "Serving $examples in place ($apache_user can read it)"
else
    examples=$runtime/examples
    step "$apache_user cannot read $src (or SERVE_COPY=1): serving a copy in $examples"
    mkdir -p "$examples"
    # Replace everything but the virtualenvs, which are kept for the next run.
    find "$examples" -mindepth 1 -maxdepth 1 ! -name .venv ! -name .pyhome -exec rm -rf {} +
    tar -C "$src" --exclude=./.venv --exclude=./.pyhome --exclude=__pycache__ -cf - . |
        tar -C "$examples" --no-same-owner -xf -
    chmod -R a+rX "$examples"
    apache_can_read "$examples" || die "$apache_user cannot read $examples either: is a parent
  directory of $runtime closed to it?"
fi

# --- 4. Virtualenvs ------------------------------------------------------------
# .pyhome: the server's Python home (wsgi-express --python-home), made by
#          python3 -m venv, with Flask, Django and the 'virtualenv' package.
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
# Apache's children and daemon processes inherit this; the application file
# reads it.
export MOD_WSGI_RS_EXAMPLES_VENV=$venv
# Read by Apache in examples/wsgi-express.conf.
export MOD_WSGI_RS_EXAMPLES=$examples

# --- 5. The wsgi-express command ---------------------------------------------
# express_command MODE: the command line into the array `cmd`, and the
# process group examples/wsgi-express.conf uses into the environment.
express_command() {
    cmd=("$express" start-server "$examples/flask/hello.wsgi" --mount-point /flask
        --include-file "$examples/wsgi-express.conf"
        --python-home "$pyhome" --python-path "$examples/django"
        --working-directory "$examples" --process-group examples
        --host "$listen" --port "$port" --server-root "$server_root" --access-log)
    if [ "$1" = embedded ]; then
        cmd+=(--embedded-mode)
        export MOD_WSGI_RS_EXAMPLES_GROUP=%{GLOBAL}
    else
        export MOD_WSGI_RS_EXAMPLES_GROUP=examples
    fi
}

show_command() {
    say "MOD_WSGI_RS_EXAMPLES=$(printf '%q' "$MOD_WSGI_RS_EXAMPLES") \\"
    say "MOD_WSGI_RS_EXAMPLES_GROUP=$(printf '%q' "$MOD_WSGI_RS_EXAMPLES_GROUP") \\"
    say "MOD_WSGI_RS_EXAMPLES_VENV=$(printf '%q' "$MOD_WSGI_RS_EXAMPLES_VENV") \\"
    local line="" a
    for a in "${cmd[@]}"; do
        case $a in
            --*) say "$line \\"; line="    $a" ;;
            *) line="${line:+$line }$(printf '%q' "$a")" ;;
        esac
    done
    say "$line"
}

pidfile=$server_root/httpd.pid
conf=$server_root/httpd.conf
errlog=$server_root/error_log

# An Apache left running by an earlier run of this script (same server
# root): stop it by its pid.
if [ -f "$pidfile" ]; then
    old=$(cat "$pidfile" 2>/dev/null || true)
    if [ -n "$old" ] && [ -r "/proc/$old/cmdline" ] &&
        tr '\0' ' ' <"/proc/$old/cmdline" | grep -qF -- "$conf"; then
        step "Stopping the Apache of an earlier run (pid $old)"
        kill -TERM "$old" 2>/dev/null || true
        for _ in $(seq 1 150); do [ -d "/proc/$old" ] || break; sleep 0.1; done
    fi
fi
if command -v ss >/dev/null 2>&1 && ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
    die "port $port is already in use (SERVE_PORT=... to pick another)."
fi

url=http://$listen:$port/

# --- 6a. Serve in the foreground ------------------------------------------------
if [ "$check" = 0 ]; then
    mode=daemon
    [ "$embedded" = 0 ] || mode=embedded
    express_command "$mode"
    step "Running wsgi-express (Ctrl-C stops Apache and its daemon processes):"
    show_command
    say
    # wsgi-express prints its banner, runs Apache in the foreground and
    # forwards Ctrl-C (and TERM) to it.
    exec "${cmd[@]}"
fi

# --- 6b. --check: start, fetch every example, stop -----------------------------
express_pid=
apache_pid=
started_pids=()

# The processes a process started (for Apache: its children and daemon
# processes), by their parent pid.
children_of() {
    ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' ' || true
}

# Stops wsgi-express (which forwards SIGTERM to Apache, and Apache stops its
# children and daemon processes), then makes sure every process it started
# is gone, by pid. Returns 1 if some had to be killed.
stop_all() {
    local lingering=0 p
    if [ -n "$apache_pid" ]; then
        started_pids=("$apache_pid")
        while read -r p; do [ -n "$p" ] && started_pids+=("$p"); done < <(children_of "$apache_pid")
    fi
    if [ -n "$express_pid" ] && kill -0 "$express_pid" 2>/dev/null; then
        kill -TERM "$express_pid" 2>/dev/null || true
        for _ in $(seq 1 300); do kill -0 "$express_pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$express_pid" 2>/dev/null; then
            say "  wsgi-express (pid $express_pid) did not exit in 30 s: killing it" >&2
            kill -KILL "$express_pid" 2>/dev/null || true
            lingering=1
        fi
    fi
    [ -z "$express_pid" ] || wait "$express_pid" 2>/dev/null || true
    express_pid=
    for p in "${started_pids[@]}"; do
        for _ in $(seq 1 150); do [ -d "/proc/$p" ] || break; sleep 0.1; done
        if [ -d "/proc/$p" ]; then
            say "  process $p that Apache started is still there: killing it" >&2
            kill -KILL "$p" 2>/dev/null || true
            lingering=1
        fi
    done
    started_pids=()
    apache_pid=
    return "$lingering"
}
trap 'stop_all || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

failures=0
body_file=$runtime/check-body
head -c 1048576 /dev/zero | tr '\0' x >"$runtime/check-upload"

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

# check_mode MODE: start wsgi-express in MODE, fetch every example, stop.
check_mode() {
    local mode=$1 group_text
    express_command "$mode"
    step "Checking $mode mode:"
    show_command
    mkdir -p "$server_root"
    : >>"$errlog"
    local log_start
    log_start=$(wc -l <"$errlog")

    # wsgi-express gets a session of its own: signals for this script
    # (Ctrl-C included) reach it only through stop_all, by its pid. setsid
    # execs in place, so $! is wsgi-express's pid.
    setsid "${cmd[@]}" </dev/null >"$runtime/check-express.out" 2>&1 &
    express_pid=$!
    local up=0
    for _ in $(seq 1 300); do
        # Apache is wsgi-express's only child.
        [ -n "$apache_pid" ] || apache_pid=$(children_of "$express_pid" | head -n 1)
        if [ -n "$apache_pid" ] && curl -s -o /dev/null --max-time 2 "$url"; then up=1; break; fi
        kill -0 "$express_pid" 2>/dev/null || break
        sleep 0.2
    done
    sed 's/^/  | /' "$runtime/check-express.out"
    if [ "$up" != 1 ]; then
        say "wsgi-express did not answer on $url. Error log:" >&2
        tail -n 40 "$errlog" >&2
        stop_all || true
        exit 1
    fi

    if [ "$mode" = embedded ]; then group_text="process group '(embedded)'"; else group_text="process group 'examples'"; fi
    probe "landing page"          200 'mod_wsgi-rs examples'           /
    probe "landing page: $mode mode" 200 "$group_text"                 /
    probe "raw WSGI hello world"  200 'Hello World!'                   /hello
    probe "Flask (wsgi-express's own application)" 200 'Hello, I love Flask!' /flask/
    probe "Flask + Jinja2"        200 '<h1>Hello, Apache &amp; co!</h1>' '/flask/greet/Apache%20&%20co'
    probe "Flask POST body"       200 '"body":"a=1&b=two"'             /flask/echo -d 'a=1&b=two'
    probe "Flask large POST"      200 '"length":1048576'               /flask/echo \
        -H 'Content-Type: application/octet-stream' --data-binary "@$runtime/check-upload"
    probe "Flask print()"         200 'printed a line'                 /flask/print
    probe "virtualenv (activate_this.py)" 200 'activated by activate_this.py' /venv/
    probe "Django"                200 'Hello from Django!'             /django/
    probe "unknown URL"           404 'Not Found'                      /no/such/page

    # The error log since this start: anything above warn, or a traceback, fails.
    local new_log bad_log
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

    if ! stop_all; then
        say "  FAIL  processes were left running after wsgi-express was stopped (killed by pid)"
        failures=$((failures + 1))
    else
        say "  ok    wsgi-express, Apache and every process Apache started have exited"
    fi
}

if [ "$mode_given" = 1 ]; then
    if [ "$embedded" = 1 ]; then check_mode embedded; else check_mode daemon; fi
else
    check_mode daemon
    check_mode embedded
fi
trap - EXIT

say
say "Error log: $errlog"
if [ "$failures" -ne 0 ]; then
    say "$failures check(s) failed."
    exit 1
fi
say "All examples answered as expected."
