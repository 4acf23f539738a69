#!/usr/bin/env bash
# Configures and builds zkit into ${BUILD_DIR:-build} (Release with debug info, warnings as errors).
# Extra arguments go to cmake's configure step.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZKIT_WERROR=ON "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
