#!/usr/bin/env bash
# scripts/run.sh: installs what is missing, builds Myna and runs mynad on
# conf/myna.conf (127.0.0.1:5222, virtual host "localhost", data under
# var/).  Extra arguments go to mynad.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
exec ./build/core/mynad -c conf/myna.conf "$@"
