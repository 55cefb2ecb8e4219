#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need (pytest for
# the Python fixture's checks), then runs formatting, lint and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import pytest' >/dev/null 2>&1; then
    echo "test.sh: installing pytest for the Python fixture (tests/requirements.txt)" >&2
    python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked --all-targets
