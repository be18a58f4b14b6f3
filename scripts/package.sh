#!/bin/sh
# package.sh [OUTDIR] - build herald's Debian package with debhelper.
# The source tree (without build folders and .git) is copied to
# OUTDIR/src, debian/ is made from etc/debian/ and etc/herald.service, and
# dpkg-buildpackage builds the binary package into OUTDIR (default
# build-deb/). Unit tests are left to `make test` (nocheck).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/build-deb}
jobs=$(nproc 2>/dev/null || echo 2)

rm -rf "$out"
mkdir -p "$out/src"
tar -C "$top" --exclude='./build*' --exclude='./.git' \
	--exclude='__pycache__' --exclude='./demo-run' -cf - . |
	tar -C "$out/src" -xf -
cp -r "$top/etc/debian" "$out/src/debian"
cp "$top/etc/herald.service" "$out/src/debian/herald.service"

cd "$out/src"
DEB_BUILD_OPTIONS="nocheck parallel=$jobs" \
	dpkg-buildpackage -b -us -uc >"$out/build.log" 2>&1 || {
	tail -n 40 "$out/build.log" >&2
	echo "package: dpkg-buildpackage failed; log in $out/build.log" >&2
	exit 1
}
ls "$out"/herald_*.deb
