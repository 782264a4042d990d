#!/usr/bin/env bash
# The test command: installs what the tests need on a fresh Debian 12 (as
# root), builds the module, and runs the unit tests and the tests that start
# real Apache servers on loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

export PYO3_PYTHON="${PYO3_PYTHON:-/usr/bin/python3}"
# The integration tests load the cdylib that `cargo build` leaves next to
# them; `cargo test` alone does not build it.
cargo build --all-targets

# The deployment guides' flows end to end: Flask behind a .wsgi wrapper, a
# virtualenv activated with activate_this.py, Django, the raw hello world,
# served by the wsgi-express and module just built, in daemon and embedded
# mode (installs Flask/Django from PyPI once).
if [ "${SKIP_EXAMPLES:-0}" != 1 ] && [ $# -eq 0 ]; then
    SERVE_TARGET="$PWD/target/debug" SERVE_PORT="${SERVE_PORT:-18000}" \
        scripts/serve-examples.sh --check
fi

cargo test -- "$@"
