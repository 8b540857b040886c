#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Installs the Debian packages USIP's builds and VM tests need, and makes the
# <codename>-backports suite known to apt (Debian's 6.12 kernel lives there).
#
# Safe to run on every CI start and from several Nx tasks at once:
#   - when everything is already there it only runs dpkg-query (well under a second,
#     no lock, no network);
#   - otherwise it serializes on a lock file, re-checks, and installs only what is missing,
#     running `apt-get update` only when a suite's lists are missing or an install needed it.
#
# Usage: tools/setup/system-deps.sh [--check]
#   --check   only report what is missing (exit 1 if anything is), change nothing.
set -euo pipefail

# Shared with tools/vm, which takes the same lock around its own apt-get calls.
readonly APT_LOCK=${USIP_APT_LOCK:-/var/lock/usip-apt.lock}
readonly BACKPORTS_FILE=/etc/apt/sources.list.d/usip-backports.sources

# Why each package is here:
#   qemu-system-x86   boots Debian kernels for the kernel-module tests (TCG)
#   busybox-static    the guest's /init and tools in the initramfs
#   cpio              packs the initramfs
#   kmod              modinfo resolves the virtio/9p module dependencies
#   xz-utils zstd     unpack .ko.xz modules (busybox insmod needs them plain) and the
#                     xz/zstd payload of a bzImage (the VM boots the plain vmlinux: faster)
#   dkms              the kernel module is shipped and installed as a DKMS package
#   make gcc bc       Kbuild of out-of-tree modules against Debian's headers
#   python3-pyroute2  an independent generic netlink client for guest tests
#   libnl-utils       genl-ctrl-list: lists families, ops and groups in the guest
#   python3-yaml python3-jsonschema
#                     the kernel's YNL CLI and library (tools/net/ynl) load and validate the spec
#                     with them: in the guest, and on the host against genetlink.yaml
#   debootstrap       makes the cached trixie build root (chroot) whose gcc and libc build
#                     modules for Linux 7.x, whose headers Debian 12's toolchain cannot use
#   e2fsprogs xfsprogs btrfs-progs fdisk quota
#                     the storage tests make real file systems (ext4 with quota, xfs, btrfs)
#                     on loop devices and partitions in the guest, which runs the host's root
#   zsh fish          usip's completion tests check that its zsh and fish scripts parse (and fish's
#                     completes); bash is there already
#   mandoc groff-base man-db
#                     the man page tests lint the generated pages (mandoc -Tlint, groff -ww) and
#                     render them (man -l)
#   systemd           systemd-analyze verifies usip-agent.service; the VM's systemd mode boots the
#                     host's /lib/systemd/systemd as pid 1 in the guest
#   debhelper dh-dkms dpkg-dev fakeroot
#                     tools/dev package builds usip-dkms and usip-tools with dpkg-buildpackage,
#                     debhelper (compat 13) and dh_dkms
#   lintian           the package tests check the built .debs
#   dpkg-repack       puts the host's NodeSource nodejs (Debian 12's own is 18) into the cached
#                     bookworm root the package tests install into
#   shellcheck        lints tools/deb/scripts/package.sh
readonly PACKAGES=(
	qemu-system-x86 busybox-static cpio kmod xz-utils zstd dkms
	debootstrap make gcc bc python3-pyroute2 libnl-utils python3-yaml python3-jsonschema
	e2fsprogs xfsprogs btrfs-progs fdisk quota
	zsh fish mandoc groff-base man-db systemd
	debhelper dh-dkms dpkg-dev fakeroot lintian dpkg-repack shellcheck
)

log() { printf 'system-deps: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

codename() {
	local name=
	if [[ -r /etc/os-release ]]; then
		# shellcheck disable=SC1091
		name=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
	fi
	[[ -n $name ]] || die "cannot tell the Debian codename from /etc/os-release"
	printf '%s\n' "$name"
}

missing_packages() {
	local pkg status
	for pkg in "${PACKAGES[@]}"; do
		status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
		[[ $status == ii* ]] || printf '%s\n' "$pkg"
	done
}

# True if any enabled apt source (one-line or deb822) already names the suite.
suite_configured() {
	local suite=$1 file
	for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		/etc/apt/sources.list.d/*.sources; do
		[[ -r $file ]] || continue
		if grep -Ev '^[[:space:]]*#' "$file" | grep -Eq "(^|[[:space:]])${suite}([[:space:]]|$)"; then
			return 0
		fi
	done
	return 1
}

# Prints "URI<TAB>SIGNED_BY" of the deb822 stanza (or one-line entry) that carries the
# release suite itself, so backports come from the same mirror as everything else.
main_mirror() {
	local suite=$1
	local sources=/etc/apt/sources.list.d/debian.sources
	if [[ -r $sources ]]; then
		awk -v suite="$suite" '
			function flush() {
				if (has_suite && uri != "") { print uri "\t" signed; found = 1; exit }
				uri = ""; signed = ""; has_suite = 0
			}
			/^[[:space:]]*#/ { next }
			/^[[:space:]]*$/ { flush(); next }
			/^URIs:/ { uri = $2 }
			/^Signed-By:/ { signed = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) has_suite = 1 }
			END { if (!found) flush() }
		' "$sources"
	fi
	if [[ -r /etc/apt/sources.list ]]; then
		awk -v suite="$suite" '$1 == "deb" && $0 ~ (" " suite " ") {
			for (i = 2; i <= NF; i++) if ($i !~ /^\[/) { print $i "\t"; exit }
		}' /etc/apt/sources.list
	fi
}

add_backports_source() {
	local suite=$1 mirror uri signed
	mirror=$(main_mirror "${suite%-backports}" | head -n 1)
	uri=${mirror%%$'\t'*}
	signed=${mirror#*$'\t'}
	[[ -n $uri ]] || die "no apt source for '${suite%-backports}' found in /etc/apt; cannot tell which mirror to use for $suite"
	[[ -n $signed && $signed != "$mirror" ]] || signed=/usr/share/keyrings/debian-archive-keyring.gpg
	log "adding $suite from $uri ($BACKPORTS_FILE)"
	local tmp
	tmp=$(mktemp "$BACKPORTS_FILE.XXXXXX")
	printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n' \
		"$uri" "$suite" "$signed" >"$tmp"
	chmod 0644 "$tmp"
	mv "$tmp" "$BACKPORTS_FILE"
}

# True if apt has downloaded package lists for the suite.
suite_has_lists() {
	compgen -G "/var/lib/apt/lists/*_dists_${1}_*Packages*" >/dev/null
}

apt_update() {
	log "apt-get update"
	apt-get -o DPkg::Lock::Timeout=600 -qq update >&2 || die "apt-get update failed"
}

apt_install() {
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y -q \
		--no-install-recommends install "$@" >&2
}

main() {
	local check_only=0
	case ${1:-} in
	'') ;;
	--check) check_only=1 ;;
	*) die "unknown argument '$1' (usage: system-deps.sh [--check])" ;;
	esac

	local suite backports
	local -a missing
	suite=$(codename)
	backports=$suite-backports
	mapfile -t missing < <(missing_packages)
	if ((${#missing[@]} == 0)) && suite_configured "$backports"; then
		exit 0
	fi
	if ((check_only)); then
		((${#missing[@]} == 0)) || log "missing packages: ${missing[*]}"
		suite_configured "$backports" || log "apt source missing: $backports"
		exit 1
	fi
	[[ $(id -u) == 0 ]] || die "must run as root to install: ${missing[*]}"

	exec 9>"$APT_LOCK" || die "cannot open lock file $APT_LOCK"
	flock -w 1800 9 || die "timed out waiting for $APT_LOCK"

	# Another caller may have done the work while we waited.
	local need_update=0
	if ! suite_configured "$backports"; then
		add_backports_source "$backports"
		need_update=1
	fi
	suite_has_lists "$suite" && suite_has_lists "$backports" || need_update=1
	((need_update)) && apt_update

	mapfile -t missing < <(missing_packages)
	((${#missing[@]} > 0)) || exit 0
	log "installing: ${missing[*]}"
	if ! apt_install "${missing[@]}"; then
		# Stale lists name .debs the mirror no longer has: refresh once and retry.
		apt_update
		apt_install "${missing[@]}" || die "apt-get install failed for: ${missing[*]}"
	fi
	mapfile -t missing < <(missing_packages)
	((${#missing[@]} == 0)) || die "still missing after install: ${missing[*]}"
}

main "$@"
