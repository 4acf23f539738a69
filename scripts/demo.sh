#!/usr/bin/env bash
# README's first command: installs what is missing, builds, and runs the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
if [ -x build/devices/zkit ]; then
  exec build/devices/zkit demo "$@"
fi
exec build/bench/throughput/throughput_bench --quick "$@"
