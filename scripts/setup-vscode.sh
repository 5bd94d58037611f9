#!/usr/bin/env bash
# Install what the VS Code extension's tests need (sidecar/tests/vscode_e2e.rs):
# - Debian's chromium (driven by playwright-core),
# - code-server 4.100.3 (= VS Code 1.100.3, the last release that runs on Node 20) from npm,
# - the extension's npm dependencies (`npm ci` in editors/vscode: TypeScript, eslint, vsce,
#   playwright-core, vscode-languageclient).
# Adapted from the proven recipe in shared/editor-e2e (setup-code-server.sh). About 1-2 min.
#
#   scripts/setup-vscode.sh                         # code-server in /opt/code-server
#   DEST=$HOME/.local/code-server scripts/setup-vscode.sh
#
# The e2e test finds code-server at $DIST_SPACE_CODE_SERVER or /opt/code-server/node_modules/.bin/code-server
# and chromium at $DIST_SPACE_CHROMIUM or /usr/bin/chromium; with CI=true a missing one fails it.
set -euo pipefail
VERSION=${CODE_SERVER_VERSION:-4.100.3}
DEST=${DEST:-/opt/code-server}
REPO=$(cd "$(dirname "$0")/.." && pwd)
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo

need_apt=
command -v chromium >/dev/null 2>&1 || need_apt=1
[ -f "$DEST/node_modules/.bin/code-server" ] && "$DEST/node_modules/.bin/code-server" --version 2>/dev/null | grep -q "^$VERSION" || need_apt=1
if [ -n "$need_apt" ]; then
  $SUDO apt-get update -qq
  # chromium: the browser; libkrb5-dev: code-server's kerberos native module needs gssapi.h;
  # ripgrep: pre-seeds @vscode/ripgrep's download (below); build tools for node-gyp.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    chromium libkrb5-dev ripgrep build-essential pkg-config python3 >/dev/null
fi
chromium --version

if ! { [ -f "$DEST/node_modules/.bin/code-server" ] && "$DEST/node_modules/.bin/code-server" --version 2>/dev/null | grep -q "^$VERSION"; }; then
  # @vscode/ripgrep@1.15.11's postinstall downloads rg from api.github.com (not reachable):
  # pre-seed its cache with Debian's rg.
  RGC="${TMPDIR:-/tmp}/vscode-ripgrep-cache-1.15.11"; mkdir -p "$RGC/x"
  cp "$(command -v rg)" "$RGC/x/rg" && tar -czf "$RGC/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" -C "$RGC/x" rg
  mkdir -p "$DEST"
  [ -f "$DEST/package.json" ] || echo '{"name":"code-server-host","private":true}' > "$DEST/package.json"
  # Not `npm install -g`/`--prefix` (the inner postinstall npm then fights the outer one:
  # TAR_ENTRY_ERROR ENOENT). npm_config_yes=true: a ~/.npmrc with yes=false makes node-pty's
  # `npx node-gyp` postinstall abort.
  (cd "$DEST" && npm_config_yes=true npm install --no-audit --no-fund --unsafe-perm "code-server@$VERSION")
fi
"$DEST/node_modules/.bin/code-server" --version | head -1

# The extension's own dependencies (lockfile), so the test can lint, type-check and package it.
(cd "$REPO/editors/vscode" && npm ci --no-audit --no-fund)
