#!/usr/bin/env bash
# scripts/test.sh: installs what is missing, builds Myna and runs the whole
# test suite (unit, integration, interop, fuzz-smoke).  BUILD_DIR and extra
# meson setup options (MESON_SETUP_ARGS) can be set for sanitizer builds.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR="${BUILD_DIR:-build}"
bash scripts/deps.sh
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  # shellcheck disable=SC2086
  meson setup "$BUILD_DIR" ${MESON_SETUP_ARGS:-} >/dev/null
fi
ninja -C "$BUILD_DIR"
meson test -C "$BUILD_DIR" --print-errorlogs "$@"
