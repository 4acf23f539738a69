#!/usr/bin/env bash
# README's first command: installs what is missing, builds, and runs the main job: `zkit demo`,
# a producer -> forwarder proxy -> spool -> consumer topology on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
exec build/devices/zkit demo "$@"
