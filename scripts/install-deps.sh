#!/usr/bin/env bash
# Installs the Debian bookworm packages zkit needs to build, test and benchmark.
# Idempotent: installs only what is missing, and runs apt-get update only then.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git       # toolchain
  libzmq3-dev cppzmq-dev                     # ZeroMQ and its C++ binding
  libmsgpack-cxx-dev                         # MessagePack (reliable-link codec, test cross-checks)
  libboost-program-options-dev               # the zkit command's flags and config files
  catch2                                     # unit and integration tests (v2)
  libzstd-dev                                # batch compression (flags bit 0-2 = 1)
  zlib1g-dev                                 # CRC-32 for spool records
  libspdlog-dev                              # logging in devices
  nlohmann-json3-dev                         # statistics as JSON
  libbenchmark-dev                           # codec micro-benchmarks
  clang libclang-rt-14-dev                   # libFuzzer target for the decoder
  python3 python3-zmq python3-msgpack python3-zstandard  # interop tests with peers zkit did not write
  iproute2 procps                            # test helpers (ss, pkill-free pid handling)
  rabbitmq-server                            # a real broker for the bridge tests, bench/bridge
  python3-pika                               # the article's pika programs; pika baseline in bench
  librabbitmq-dev                            # rabbitmq-c: the bridge, the direct baseline in bench
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all ${#packages[@]} packages present"
fi
