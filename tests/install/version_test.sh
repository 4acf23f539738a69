#!/usr/bin/env bash
# zkit/version.hpp outside a git clone: cmake/ZkitVersion.cmake (the script the build runs) on a
# `git archive` of this tree (the description baked in by export-subst), on a plain copy without
# .git (unknown), and with -DZKIT_GIT_DESCRIBE (the packager's value wins). The copies sit inside
# this git work tree's build dir, so they also check that a tarball never takes the description
# of a repository it happens to be unpacked in.
# Usage: version_test.sh SOURCE_DIR WORK_DIR VERSION
set -euo pipefail
src=$1 work=$2 version=$3
fail() { echo "version_test: FAIL: $*" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work"
describe_of() {  # tree [cmake -D...] -> the ZKIT_GIT_DESCRIPTION the script writes for it
  local tree=$1; shift
  local header
  header=$(mktemp "$work/version.XXXXXX.hpp")
  cmake -DZKIT_SOURCE_DIR="$tree" -DZKIT_VERSION="$version" \
    -DZKIT_VERSION_TEMPLATE="$tree/cmake/version.hpp.in" -DZKIT_VERSION_HEADER="$header" \
    "$@" -P "$tree/cmake/ZkitVersion.cmake" >/dev/null
  grep -q "^#define ZKIT_VERSION_STRING \"$version\"$" "$header" ||
    fail "$header: no ZKIT_VERSION_STRING \"$version\""
  sed -n 's/^#define ZKIT_GIT_DESCRIPTION "\(.*\)"$/\1/p' "$header"
}

mkdir -p "$work/copy"
cp -r "$src/cmake" "$work/copy/"
got=$(describe_of "$work/copy")
[ "$got" = unknown ] || fail "plain copy without .git: '$got', want 'unknown'"
echo "plain copy without .git: $got"
got=$(describe_of "$work/copy" -DZKIT_GIT_DESCRIBE=debian-0.1.0-1)
[ "$got" = debian-0.1.0-1 ] || fail "-DZKIT_GIT_DESCRIBE: '$got'"
echo "with -DZKIT_GIT_DESCRIBE=debian-0.1.0-1: $got"

if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  want=$(git -C "$src" describe --tags 2>/dev/null || git -C "$src" rev-parse --short HEAD)
  mkdir -p "$work/archive"
  git -C "$src" archive --format=tar HEAD cmake | tar -x -C "$work/archive"
  got=$(describe_of "$work/archive")
  [ "$got" = "$want" ] || fail "git archive tarball: '$got', want '$want'"
  echo "git archive of HEAD (no .git): $got"
  got=$(describe_of "$src")
  [[ $got == "$want"* ]] || fail "the work tree itself: '$got', want '$want[-dirty]'"
  echo "the git work tree: $got"
else
  echo "version_test: $src is not a git work tree: the git archive case was not checked"
fi
