#!/usr/bin/env bash
# Install Emacs (no X) and eglot from Debian for the stock-client test
# (sidecar/tests/stock_clients.rs): `apt-get install emacs-nox elpa-eglot` (Debian bookworm:
# Emacs 28.2, eglot 1.9). Needs root (or sudo); does nothing when `emacs` with eglot is there.
#
# The test looks for `emacs` on PATH (or $DIST_SPACE_EMACS). With CI=true a missing emacs or
# eglot fails it.
set -euo pipefail
have() { command -v emacs >/dev/null 2>&1 && emacs --batch -q --eval "(require 'eglot)" >/dev/null 2>&1; }
if have; then
  emacs --version | head -1
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends emacs-nox elpa-eglot >/dev/null
have || { echo "emacs with eglot still not usable" >&2; exit 1; }
emacs --version | head -1
