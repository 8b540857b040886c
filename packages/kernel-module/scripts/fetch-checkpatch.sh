#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Puts the kernel's scripts/checkpatch.pl (with the spelling.txt and
# const_structs.checkpatch it reads) into a cache and prints the path of
# checkpatch.pl. Debian ships checkpatch.pl only inside linux-source-*, so the
# .deb is downloaded with apt-get (no installation) and the three files are
# extracted from its tarball. Idempotent, and safe to run in parallel (flock).
#
# Environment: USIP_CACHE_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/usip),
#              USIP_CHECKPATCH_SOURCE_PACKAGE (default linux-source-6.12).
set -eu

package=${USIP_CHECKPATCH_SOURCE_PACKAGE:-linux-source-6.12}
cache_root=${USIP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/usip}
mkdir -p "$cache_root"

candidate_version() {
	apt-cache policy "$package" 2>/dev/null |
		awk '/Candidate:/ { if ($2 != "(none)") print $2 }'
}

exec 9>"$cache_root/checkpatch.lock"
flock 9

version=$(candidate_version)
if [ -z "$version" ]; then
	# A fresh machine may not have read the package lists yet.
	apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
	version=$(candidate_version)
fi
if [ -z "$version" ]; then
	# Offline: fall back to whatever version was extracted before.
	existing=$(ls -d "$cache_root"/checkpatch-*/checkpatch.pl 2>/dev/null | tail -n 1 || true)
	if [ -n "$existing" ]; then
		echo "$existing"
		exit 0
	fi
	echo "fetch-checkpatch: apt knows no candidate for $package and nothing is cached in $cache_root" >&2
	exit 1
fi

dest="$cache_root/checkpatch-$version"
if [ -f "$dest/checkpatch.pl" ] && [ -f "$dest/spelling.txt" ] &&
   [ -f "$dest/const_structs.checkpatch" ]; then
	echo "$dest/checkpatch.pl"
	exit 0
fi

work=$(mktemp -d "$cache_root/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q "$package=$version" >&2)
deb=$(ls "$work"/*.deb)
# The .deb holds one tarball of the whole tree; pull only the three files.
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" --wildcards './usr/src/linux-source-*.tar.*'
tarball=$(ls "$work"/usr/src/linux-source-*.tar.*)
top=$(basename "$tarball" | sed 's/\.tar\..*$//')
tar -x -C "$work" -f "$tarball" \
	"$top/scripts/checkpatch.pl" "$top/scripts/spelling.txt" \
	"$top/scripts/const_structs.checkpatch"
mkdir -p "$dest.tmp"
cp "$work/$top/scripts/checkpatch.pl" "$work/$top/scripts/spelling.txt" \
	"$work/$top/scripts/const_structs.checkpatch" "$dest.tmp/"
chmod +x "$dest.tmp/checkpatch.pl"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "$dest/checkpatch.pl"
