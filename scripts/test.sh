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
cargo test -- "$@"
