#!/usr/bin/env bash
# plugins/build-and-test.sh: proves a third-party module builds through the
# installed SDK alone.  Installs the main project from its build directory
# into a staging directory, points pkg-config at the staged myna.pc, builds
# plugins/hello as a standalone meson project with -Werror, installs it into
# the staged moduledir and checks the result.
#
#   plugins/build-and-test.sh [BUILD_DIR]     (default: build)
#
# Prints one line on success; on failure, the log of every step and a
# non-zero exit status.  KEEP_TMP=1 keeps the temporary directory.
#
# Relocating a staged .pc: PKG_CONFIG_SYSROOT_DIR and
# --define-variable=prefix= both apply to every package pkgconf reads, so
# they also move glib-2.0 (a dependency of myna) into the staging directory,
# and --define-prefix guesses the prefix wrongly with a multiarch libdir.
# So this script copies the staged myna.pc and rewrites it: every value
# starting with the install prefix gets the staging directory in front
# (prefix= itself, and moduledir=, which meson writes as an absolute path).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:-build}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/myna-plugins.XXXXXX")
log=$tmp/log
stage=$tmp/stage
pcdir=$tmp/pkgconfig
plugbuild=$tmp/hello-build
step="starting"

cleanup () {
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "build-and-test: FAILED at: $step" >&2
    echo "---- log ($log) ----" >&2
    cat "$log" >&2 || true
    echo "---- end of log ----" >&2
  fi
  if [[ -n ${KEEP_TMP:-} || $rc -ne 0 ]]; then
    echo "build-and-test: temporary files kept in $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT

# Runs a command with its output going to the log.
run () {
  echo "+ $*" >>"$log"
  "$@" >>"$log" 2>&1
}

fail () {
  echo "error: $*" >>"$log"
  exit 1
}

: >"$log"

step="checking the build directory $build"
[[ -d $build ]] || fail "no such build directory: $build"
build=$(cd "$build" && pwd)
[[ -f $build/meson-info/intro-buildoptions.json ]] \
  || fail "$build is not a configured meson build directory"

step="reading the install prefix of $build"
prefix=$(python3 -c '
import json, sys
opts = json.load(open(sys.argv[1]))
print(next(o["value"] for o in opts if o["name"] == "prefix"))
' "$build/meson-info/intro-buildoptions.json")
[[ $prefix == /* ]] || fail "prefix '$prefix' is not absolute"
echo "prefix: $prefix" >>"$log"

step="staging the main project (meson install --destdir)"
run meson install -C "$build" --destdir "$stage"

step="relocating the staged myna.pc"
staged_pc=$(find "$stage" -path '*/pkgconfig/myna.pc' -print -quit)
[[ -n $staged_pc ]] || fail "no pkgconfig/myna.pc under $stage"
mkdir -p "$pcdir"
# Values equal to the prefix, or below it, move under the staging dir.
awk -v p="$prefix" -v s="$stage" '
  match ($0, /^[A-Za-z0-9_.]+=/) {
    key = substr ($0, 1, RLENGTH); val = substr ($0, RLENGTH + 1)
    if (val == p || index (val, p "/") == 1) { print key s val; next }
  }
  { print }' "$staged_pc" >"$pcdir/myna.pc"
echo "---- $pcdir/myna.pc" >>"$log"
cat "$pcdir/myna.pc" >>"$log"
export PKG_CONFIG_PATH=$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
run pkg-config --exists --print-errors myna
moduledir=$(pkg-config --variable=moduledir myna)
[[ $moduledir == "$stage"/* ]] \
  || fail "moduledir '$moduledir' is not inside the staging directory"
for h in myna.h module.h version.h; do
  found=0
  for flag in $(pkg-config --cflags-only-I myna); do
    if [[ -f ${flag#-I}/myna/$h ]]; then found=1; fi
  done
  [[ $found -eq 1 ]] || fail "<myna/$h> is not reachable through pkg-config --cflags"
done

step="configuring plugins/hello against the staged SDK"
run meson setup "$plugbuild" "$here/hello" \
  -Dpkg_config_path="$pcdir" -Dwarning_level=2 -Dwerror=true

step="building plugins/hello"
run meson compile -C "$plugbuild"

step="installing plugins/hello into the staged moduledir"
run meson install -C "$plugbuild"

step="checking mod_hello.so and hello.module"
so=$plugbuild/mod_hello.so
[[ -f $so ]] || fail "$so was not built"
run nm -D --defined-only "$so"
nm -D --defined-only "$so" | awk '$3 == "myna_module_desc" { ok = 1 } END { exit !ok }' \
  || fail "mod_hello.so does not export myna_module_desc"
[[ -f $plugbuild/hello.module ]] || fail "hello.module missing beside mod_hello.so in $plugbuild"
[[ -f $moduledir/mod_hello.so ]] || fail "mod_hello.so not installed in $moduledir"
[[ -f $moduledir/hello.module ]] || fail "hello.module not installed in $moduledir"

step="done"
echo "plugins/hello: OK (built with -Werror against the staged SDK; exports myna_module_desc; installed with hello.module)"
