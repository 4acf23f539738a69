#!/usr/bin/env bash
# The spool store on a real full disk: mounts a 4 MiB tmpfs on a fresh directory under /tmp, runs
# spool_tmpfs_check on it (8 MB of batches with the default 64 MiB segments; a reader acknowledges
# what is committed; every commit that fails for space must succeed within 3 retries), unmounts.
# Needs root (mount); without it, it fails saying so. Not part of ctest for that reason.
#
#   scripts/spool-tmpfs-check.sh [--build DIR]      (default: the build/ beside scripts/)
#
# Exit 0 on PASS, 1 on FAIL (or when it cannot mount), 2 on bad usage.
set -euo pipefail

build="$(cd "$(dirname "$0")/.." && pwd)/build"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "spool-tmpfs-check: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
check="$build/tests/spool/spool_tmpfs_check"
[[ -x "$check" ]] || { echo "FAIL: $check not built (cmake --build $build --target spool_tmpfs_check)"; exit 1; }
if [[ $(id -u) -ne 0 ]]; then
  echo "FAIL: mounting a tmpfs needs root (this is uid $(id -u)); run it as root"
  exit 1
fi
mnt=$(mktemp -d /tmp/zkit-spool-tmpfs-XXXXXX)
if ! mount -t tmpfs -o size=4m tmpfs "$mnt"; then
  rmdir "$mnt"
  echo "FAIL: mount -t tmpfs -o size=4m on $mnt refused (no CAP_SYS_ADMIN in this container?)"
  exit 1
fi
trap 'umount "$mnt" && rmdir "$mnt"' EXIT
mkdir "$mnt/spool"
"$check" "$mnt/spool"
