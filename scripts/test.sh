#!/usr/bin/env bash
# Runs every test of the project. With CI=true it first installs what the tests need
# (nothing installed by hand survives on a fresh machine), and tests that need an external
# program fail instead of skipping when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${CI:-}" = "true" ]; then
  for setup in scripts/setup-*.sh; do
    [ -e "$setup" ] || continue
    echo "== $setup"
    bash "$setup"
  done
fi

echo "== cargo test (workspace)"
cargo test --workspace --locked
