#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Puts the kernel's own YNL tooling of one kernel series into a cache: the
# netlink schemas (Documentation/netlink/*.yaml, among them genetlink.yaml,
# which a protocol: genetlink spec must validate against) and the Python YNL
# CLI and library (tools/net/ynl: cli.py and lib/ up to 6.12, pyynl/cli.py and
# pyynl/lib/ in newer kernels). Debian ships them only inside
# linux-source-SERIES, so the .deb is downloaded with apt-get (no
# installation) and only those paths are extracted from its tarball, keeping
# the tree's layout (newer CLIs find the schemas relative to themselves).
# Idempotent, and safe to run in parallel (flock).
#
# Usage: fetch-kernel-ynl.sh SERIES        e.g. 6.12, or 7 for the newest 7.x apt knows
#
# Prints, one per line:
#   series=6.12
#   version=<Debian version of linux-source-SERIES>
#   dir=<the cached tree>
#   schema=<dir>/Documentation/netlink/genetlink.yaml   (empty if this series has none)
#   cli=<the YNL CLI's cli.py>                           (empty if this series has none)
# Linux 6.1 has neither (YNL's genetlink.yaml and tools/net/ynl came later):
# schema= and cli= are empty for it, and that is not an error.
#
# A series the host's apt does not know (7.x on Debian 12) is looked up with
# the apt of the VM harness's build root of a newer release
# (USIP_CACHE_DIR/build-roots/<suite>, made by tools/vm for 7.x kernels), in a
# chroot, as the harness itself does for 7.x headers.
#
# Environment: USIP_CACHE_DIR (default ${XDG_CACHE_HOME:-$HOME/.cache}/usip).
set -eu

if [ $# -ne 1 ] || ! printf '%s\n' "$1" | grep -Eq '^[0-9]+(\.[0-9]+)?$'; then
	echo "usage: fetch-kernel-ynl.sh SERIES (a kernel series such as 6.12, or a major such as 7)" >&2
	exit 2
fi
series=$1
package=linux-source-$series
cache_root=${USIP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/usip}
mkdir -p "$cache_root"

# The build root whose apt is used, or empty for the host's.
apt_root=

run_apt() {
	if [ -n "$apt_root" ]; then
		chroot "$apt_root" "$@"
	else
		"$@"
	fi
}

candidate_version() {
	run_apt apt-cache policy "$package" 2>/dev/null |
		awk '/Candidate:/ { if ($2 != "(none)") print $2 }'
}

# The manifest of a complete cached tree is its last file written.
print_manifest() {
	cat "$1/manifest"
}

# The newest series of major $1 whose linux-source apt knows, or nothing.
newest_series() {
	run_apt apt-cache pkgnames "linux-source-$1." 2>/dev/null |
		sed -n "s/^linux-source-\($1\.[0-9][0-9]*\)\$/\1/p" | sort -t. -k2,2n | tail -n 1
}

exec 9>"$cache_root/kernel-ynl.lock"
flock 9

if [ "${series#*.}" = "$series" ]; then
	major=$series
	series=$(newest_series "$major")
	for root in "$cache_root"/build-roots/*; do
		[ -z "$series" ] || break
		[ -x "$root/usr/bin/apt-get" ] || continue
		apt_root=$root
		series=$(newest_series "$major")
		[ -n "$series" ] || apt_root=
	done
	if [ -z "$series" ]; then
		# Offline: the newest series of that major extracted before.
		existing=$(ls -d "$cache_root/kernel-ynl-$major."*/manifest 2>/dev/null | sort -V | tail -n 1 || true)
		if [ -n "$existing" ]; then
			print_manifest "$(dirname "$existing")"
			exit 0
		fi
		echo "fetch-kernel-ynl: apt knows no linux-source-$major.* and nothing is cached in $cache_root" >&2
		exit 1
	fi
	package=linux-source-$series
fi

version=$(candidate_version)
if [ -z "$version" ]; then
	# A fresh machine may not have read the package lists yet.
	apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || true
	version=$(candidate_version)
fi
if [ -z "$version" ] && [ -z "$apt_root" ]; then
	for root in "$cache_root"/build-roots/*; do
		[ -x "$root/usr/bin/apt-get" ] || continue
		apt_root=$root
		version=$(candidate_version)
		[ -n "$version" ] && break
		apt_root=
	done
fi
if [ -z "$version" ]; then
	# Offline: fall back to what was extracted before for this series.
	existing=$(ls -d "$cache_root/kernel-ynl-$series-"*/manifest 2>/dev/null | tail -n 1 || true)
	if [ -n "$existing" ]; then
		print_manifest "$(dirname "$existing")"
		exit 0
	fi
	echo "fetch-kernel-ynl: apt knows no candidate for $package and nothing is cached in $cache_root" >&2
	exit 1
fi

dest="$cache_root/kernel-ynl-$series-$version"
if [ -f "$dest/manifest" ]; then
	print_manifest "$dest"
	exit 0
fi

work=$(mktemp -d "$cache_root/fetch-ynl.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [ -n "$apt_root" ]; then
	inside=$(mktemp -d "$apt_root/tmp/fetch-ynl.XXXXXX")
	trap 'rm -rf "$work" "$inside"' EXIT
	chroot "$apt_root" sh -c "cd /tmp/${inside##*/} && apt-get download -q '$package=$version'" >&2
	mv "$inside"/*.deb "$work"/
else
	(cd "$work" && apt-get download -q "$package=$version" >&2)
fi
deb=$(ls "$work"/*.deb)
# The .deb holds one tarball of the whole tree; pull only what YNL needs.
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" --wildcards './usr/src/linux-source-*.tar.*'
rm -f "$deb"
tarball=$(ls "$work"/usr/src/linux-source-*.tar.*)
top=$(basename "$tarball" | sed 's/\.tar\..*$//')
mkdir -p "$work/tree"
# One pass over the (large) tarball. A series without YNL has none of these
# paths: tar then says "Not found in archive", which is expected; anything
# else it says is an error.
if ! tar -x -C "$work/tree" -f "$tarball" --wildcards \
	"$top/Documentation/netlink/*.yaml" "$top/tools/net/ynl" 2>"$work/tar.err"; then
	if grep -v -e 'Not found in archive' -e 'Exiting with failure status due to previous errors' \
		"$work/tar.err" >&2; then
		echo "fetch-kernel-ynl: extracting from $tarball failed" >&2
		exit 1
	fi
fi
mkdir -p "$work/tree/$top"
rm -f "$tarball"

schema=
cli=
[ -f "$work/tree/$top/Documentation/netlink/genetlink.yaml" ] &&
	schema="$dest/Documentation/netlink/genetlink.yaml"
# The CLI moved from tools/net/ynl/cli.py to tools/net/ynl/pyynl/cli.py
# (newer kernels); each has its lib/ next to it.
for candidate in tools/net/ynl/pyynl/cli.py tools/net/ynl/cli.py; do
	if [ -f "$work/tree/$top/$candidate" ] && [ -d "$work/tree/$top/${candidate%cli.py}lib" ]; then
		cli="$dest/$candidate"
		break
	fi
done
printf 'series=%s\nversion=%s\ndir=%s\nschema=%s\ncli=%s\n' \
	"$series" "$version" "$dest" "$schema" "$cli" >"$work/tree/$top/manifest"
rm -rf "$dest"
mv "$work/tree/$top" "$dest"
print_manifest "$dest"
