#!/usr/bin/env bash
# scripts/deps.sh: installs the Debian 12 packages Myna needs to build, run
# and test, when any is missing.  Sourced or run by scripts/run.sh and
# scripts/test.sh; safe to run again (it does nothing when all are there).
set -euo pipefail

MYNA_PACKAGES=(
  gcc clang meson ninja-build pkg-config
  libglib2.0-dev libxml2-dev libgnutls28-dev nettle-dev libsqlite3-dev libidn2-dev
  libsoup-3.0-dev libjson-glib-dev
  libclang-rt-14-dev
  python3 python3-slixmpp python3-aioxmpp go-sendxmpp
  # python3-pytest: runs aioxmpp's vendored end-to-end cases (tests/interop/aioxmpp-e2e)
  python3-pytest
  # xmppc (libstrophe) and python3-nbxmpp (Gajim's library): PEP, OMEMO
  # device lists and bookmarks read by clients nobody here wrote
  xmppc python3-nbxmpp
  glib-networking gobject-introspection libgirepository1.0-dev python3-gi gir1.2-glib-2.0
)

missing=()
for p in "${MYNA_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q >&2
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
