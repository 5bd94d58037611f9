#!/usr/bin/env bash
# Install prettier (from npm) into target/tools/prettier for the stale-writer tests
# (sidecar/tests/stale_writers.rs: a real formatter writing back a stale copy). Git-ignored
# (under target/); the tests look for target/tools/prettier/node_modules/.bin/prettier, or
# $DIST_SPACE_PRETTIER. With CI=true a missing prettier fails them; otherwise they skip loudly.
set -euo pipefail
VERSION=${PRETTIER_VERSION:-3.3.3}
cd "$(dirname "$0")/.."
DEST=target/tools/prettier
BIN=$DEST/node_modules/.bin/prettier
if [ -x "$BIN" ] && [ "$("$BIN" --version)" = "$VERSION" ]; then
  echo "prettier $VERSION"
  exit 0
fi
mkdir -p "$DEST"
npm install --silent --no-audit --no-fund --prefix "$DEST" "prettier@$VERSION"
echo "prettier $("$BIN" --version)"
