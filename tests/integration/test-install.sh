#!/usr/bin/env bash
# test-install.sh: an install in a private place runs without
# LD_LIBRARY_PATH.  Installs the build into a temporary DESTDIR (so the
# prefix is one no loader path knows), then, with LD_LIBRARY_PATH unset,
# runs the installed mynad --version and mynactl --help and checks that the
# installed mynad and every installed module resolve libmyna from inside
# that install ($ORIGIN-relative RUNPATH), not from anywhere else.
#
#   test-install.sh BUILD_DIR
set -euo pipefail

build=${1:?usage: test-install.sh BUILD_DIR}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/myna-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unset LD_LIBRARY_PATH

fail () { echo "FAIL: $*" >&2; exit 1; }

meson install -C "$build" --destdir "$tmp" --no-rebuild --quiet >"$tmp/install.log" 2>&1 \
  || { cat "$tmp/install.log" >&2; fail "meson install"; }

mynad=$(find "$tmp" -type f -name mynad | head -n1)
mynactl=$(find "$tmp" -type f -name mynactl | head -n1)
[[ -x $mynad ]] || fail "no installed mynad"
[[ -x $mynactl ]] || fail "no installed mynactl"

out=$("$mynad" --version 2>&1) || fail "installed mynad --version: $out"
[[ $out == mynad\ * ]] || fail "unexpected mynad --version output: $out"
echo "ok: $out"
out=$("$mynactl" --help 2>&1) || fail "installed mynactl --help: $out"
[[ $out == *check-config* ]] || fail "unexpected mynactl --help output: $out"
echo "ok: mynactl --help"

# Whoever needs libmyna finds the installed one.
checked=0
while IFS= read -r -d '' bin; do
  if readelf -d "$bin" | grep -q 'NEEDED.*libmyna\.so'; then
    line=$(ldd "$bin" | grep 'libmyna\.so' || true)
    [[ $line == *"=> $tmp/"* ]] || fail "$bin: libmyna not resolved inside the install: ${line:-none}"
    checked=$((checked + 1))
  fi
done < <(find "$tmp" -type f \( -name mynad -o -name 'mod_*.so' -o -perm -u+x -path '*libexec*' \) -print0)
[[ $checked -ge 2 ]] || fail "only $checked installed binaries link libmyna (mynad and the modules should)"
echo "ok: $checked installed binaries resolve libmyna inside the install"
