#!/usr/bin/env bash
# The .deb: `cpack -G DEB` builds it from the build tree; dpkg installs it into a fresh root and
# runs the installed `zkit --version`; dpkg removes it again.
#
# Why dpkg --root and not a chroot: a debootstrap chroot needs the network and minutes per run (or
# a cache outside the build), and the package's Depends would then be installed by apt, not
# checked. Here the root directory is empty and the dpkg database is fresh, seeded with this
# machine's package status only, so dpkg -i checks every Depends entry against what is really
# installed (no --force-depends) and puts every file under the root. The maintainer scripts run
# chrootless with DPKG_ROOT set (the root has no shell); they run `ldconfig -r ROOT`, whose cache is
# checked below. The installed command runs from the root with the host's system libraries, which
# are the Debian packages its Depends names.
# Usage: deb_test.sh BUILD_DIR WORK_DIR VERSION
set -euo pipefail
build=$1 work=$2 version=$3
fail() { echo "deb_test: FAIL: $*" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work"

if ! (cd "$build" && cpack -G DEB -B "$work/cpack") >"$work/cpack.log" 2>&1; then
  cat "$work/cpack.log"
  fail "cpack -G DEB failed"
fi
deb=$(find "$work/cpack" -maxdepth 1 -name "zkit_${version}_*.deb" | head -1)
[ -n "$deb" ] || fail "no zkit_${version}_*.deb in $work/cpack"
echo "package: $(basename "$deb"), $(stat -c %s "$deb") bytes"
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for p in libzmq5 libspdlog libboost-program-options libc6 libstdc++6; do
  grep -q "$p" <<<"$depends" || fail "Depends lacks $p (dpkg-shlibdeps should have found it)"
done
dpkg-deb -c "$deb" >"$work/contents"
grep -q ' ./usr/bin/zkit$' "$work/contents" || fail "no /usr/bin/zkit in the package"

root=$work/root
admin=$root/var/lib/dpkg
mkdir -p "$admin/info" "$admin/updates" "$admin/triggers" "$root/etc"
cp /var/lib/dpkg/status "$admin/status"
: >"$admin/available"
dpkg_root=(dpkg --root="$root" --admindir="$admin" --log=/dev/null --force-script-chrootless)
# (dpkg warns once per seeded package that its file list is missing: kept in dpkg-i.log)
if ! "${dpkg_root[@]}" -i "$deb" >"$work/dpkg-i.log" 2>&1; then
  grep -v 'files list file for package' "$work/dpkg-i.log"
  fail "dpkg -i into $root failed"
fi
grep -v 'files list file for package' "$work/dpkg-i.log"
status=$(dpkg-query --admindir="$admin" -W -f='${Status}' zkit)
[ "$status" = "install ok installed" ] || fail "dpkg says '$status'"

zkit=$root/usr/bin/zkit
out=$("$zkit" --version) || fail "installed zkit --version exited $?"
echo "installed: $out"
[[ $out =~ ^zkit\ ${version//./\\.}\ \([^\)]+\)$ ]] || fail "zkit --version printed '$out'"
if readelf -d "$zkit" | grep -q 'NEEDED.*libzkit_core'; then  # shared libraries (the default)
  core=$(readlink -f "$(ldd "$zkit" | awk '/libzkit_core/ {print $3}')")
  [[ $core == "$root/usr/lib/"* ]] || fail "the installed zkit loads libzkit_core from '$core'"
  ldconfig -p -C "$root/etc/ld.so.cache" >"$work/ld.so.cache.txt"
  grep -q 'libzkit_core\.so\.[0-9.]* .*=> /usr/lib/' "$work/ld.so.cache.txt" ||
    fail "postinst's ldconfig -r did not put libzkit_core into $root/etc/ld.so.cache"
  echo "the installed zkit loads $core; postinst's ldconfig -r listed it in the root's cache"
fi
grep -q "^ExecStart=/usr/bin/zkit spool --config /etc/zkit/%i.conf" \
  "$root/usr/lib/systemd/system/zkit-spool@.service" || fail "zkit-spool@.service ExecStart"

"${dpkg_root[@]}" -r zkit >"$work/dpkg-r.log" 2>&1 || { cat "$work/dpkg-r.log"; fail "dpkg -r failed"; }
[ ! -e "$zkit" ] || fail "$zkit is still there after dpkg -r"
left=$(find "$root" -path "$root/var" -prune -o -path "$root/etc" -prune -o -type f -print | head -3)
[ -z "$left" ] || fail "files left after dpkg -r: $left"
# The dependency check is real: with an empty package database dpkg -i must refuse.
bare=$work/bare
mkdir -p "$bare/var/lib/dpkg/info" "$bare/var/lib/dpkg/updates" "$bare/etc"
: >"$bare/var/lib/dpkg/status"
if dpkg --root="$bare" --admindir="$bare/var/lib/dpkg" --log=/dev/null --force-script-chrootless \
     -i "$deb" >"$work/dpkg-bare.log" 2>&1; then
  fail "dpkg -i succeeded with no package installed: the Depends are not checked"
fi
grep -q 'depends on libzmq5' "$work/dpkg-bare.log" || { cat "$work/dpkg-bare.log"; fail "no libzmq5 dependency error"; }
echo "with an empty package database dpkg refuses: $(grep -m1 'depends on' "$work/dpkg-bare.log" | sed 's/^ *//')"
echo "deb_test: installed into a fresh root, ran zkit --version, removed cleanly"
