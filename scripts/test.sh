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
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# The VS Code extension's own unit tests (node --test; its e2e test is a cargo test:
# sidecar/tests/vscode_e2e.rs). Counted in the totals below.
echo "== editors/vscode: npm test"
if [ -d editors/vscode/node_modules ]; then
  set +e
  (cd editors/vscode && npm test 2>&1) | tee -a "$log.npm"
  npm_status=${PIPESTATUS[0]}
  set -e
  awk '/^# pass / { p = $3 } /^# fail / { f = $3 } END { printf "test result: node. %d passed; %d failed\n", p, f }' "$log.npm" >> "$log"
  rm -f "$log.npm"
  [ "$npm_status" = 0 ] || status=1
elif [ "${CI:-}" = "true" ]; then
  echo "editors/vscode/node_modules missing but CI=true: run scripts/setup-vscode.sh"
  echo "test result: node. 0 passed; 1 failed" >> "$log"
  status=1
else
  echo "SKIPPED: editors/vscode/node_modules missing (run scripts/setup-vscode.sh)"
fi
# One closing line with the totals of every test binary (cargo's last line is a doc-test run).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
