#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Builds (once) and caches the USIP debug kernel: Debian's own linux-source-6.12, configured
# from x86_64_defconfig plus usip-debug.config (lockdep, PROVE_RCU, DEBUG_ATOMIC_SLEEP, KASAN,
# BTF, kprobes, virtio and 9p built in), and prints the directory it is cached in.
#
# The cache is ${USIP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/usip}/debug-kernel/<key>/
# with <key> = <source package version>-<first 12 hex digits of sha256(usip-debug.config)>:
#   linux/          the built tree, kept: out-of-tree modules build against it
#                   (make -C .../linux M=DIR modules; its vmlinux gives modules their BTF)
#   vmlinux         the kernel without its DWARF (BTF, symbols and the PVH note kept): booted
#   vmlinuz         arch/x86/boot/bzImage
#   root/lib/modules/<release>/   modules.builtin, modules.dep (empty: all is built in)
#   config          the final .config
#   build.log       make's output
#   kernel.json     written last: the build is complete (tools/vm reads it)
# When the kernel.json of the key is there, this prints the directory and does nothing else.
# An interrupted build resumes where make stopped.
#
# Usage: tools/debug-kernel/build.sh [--print-key]
#   --print-key   print the key this would build, build nothing (asks apt for the version)
# Environment:
#   USIP_DEBUG_KERNEL_SOURCE_VERSION  a version of linux-source-6.12 (default: apt's candidate)
#   USIP_DEBUG_KERNEL_JOBS            make -j (default: the number of CPUs)
#   USIP_DEBUG_KERNEL_NICE            nice level of the compilers (default 10: QEMU guests of
#                                     other runs on the machine keep their speed)
set -euo pipefail

readonly PACKAGE=linux-source-6.12
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE
readonly FRAGMENT=$HERE/usip-debug.config
readonly APT_LOCK=${USIP_APT_LOCK:-/var/lock/usip-apt.lock}
readonly CACHE_ROOT=${USIP_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/usip}/debug-kernel
readonly JOBS=${USIP_DEBUG_KERNEL_JOBS:-$(nproc)}
readonly NICE=${USIP_DEBUG_KERNEL_NICE:-10}

# Why each package is here: make gcc bc bison flex (Kbuild, kconfig), libelf-dev (objtool),
# libssl-dev (certificate tools), dwarves (pahole: BTF from DWARF), python3 (scripts),
# cpio (kheaders), kmod (depmod), xz-utils (the source tarball), binutils (strip).
readonly BUILD_DEPS=(make gcc bc bison flex libelf-dev libssl-dev dwarves python3 cpio kmod xz-utils binutils)

log() { printf 'debug-kernel: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

missing_deps() {
	local pkg status
	for pkg in "${BUILD_DEPS[@]}"; do
		status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
		[[ $status == ii* ]] || printf '%s\n' "$pkg"
	done
}

install_deps() {
	local missing
	missing=$(missing_deps)
	[[ -z $missing ]] && return 0
	(
		flock 9
		missing=$(missing_deps)
		[[ -z $missing ]] && exit 0
		log "installing ${missing//$'\n'/ }"
		export DEBIAN_FRONTEND=noninteractive
		# shellcheck disable=SC2086
		if ! apt-get -o DPkg::Lock::Timeout=600 -y -q --no-install-recommends install $missing >&2; then
			apt-get -o DPkg::Lock::Timeout=600 -qq update >&2
			# shellcheck disable=SC2086
			apt-get -o DPkg::Lock::Timeout=600 -y -q --no-install-recommends install $missing >&2
		fi
	) 9>"$APT_LOCK"
}

candidate_version() {
	apt-cache policy "$PACKAGE" 2>/dev/null | awk '/Candidate:/ { if ($2 != "(none)") print $2 }'
}

source_version() {
	if [[ -n ${USIP_DEBUG_KERNEL_SOURCE_VERSION:-} ]]; then
		printf '%s\n' "$USIP_DEBUG_KERNEL_SOURCE_VERSION"
		return
	fi
	local v
	v=$(candidate_version)
	if [[ -z $v ]]; then
		(flock 9 && apt-get -o DPkg::Lock::Timeout=600 -qq update >&2) 9>"$APT_LOCK"
		v=$(candidate_version)
	fi
	[[ -n $v ]] || die "apt knows no candidate for $PACKAGE (is bookworm-security or -backports configured?)"
	printf '%s\n' "$v"
}

config_hash() { sha256sum "$FRAGMENT" | cut -c1-12; }

# The newest complete build of this source version with another config, if any.
seed_tree() {
	local version=$1 key=$2 dir best=
	for dir in "$CACHE_ROOT/$version"-*; do
		[[ $dir == "$CACHE_ROOT/$key" ]] && continue
		[[ -f $dir/kernel.json && -f $dir/linux/vmlinux ]] || continue
		if [[ -z $best || $dir/kernel.json -nt $best/kernel.json ]]; then
			best=$dir
		fi
	done
	[[ -z $best ]] || printf '%s\n' "$best"
}

# Every option the fragment sets must have that value in the final .config: a dependency
# that is not met makes olddefconfig drop an option silently. Options the fragment turns off
# may be selected by something else; that is only worth a note.
check_config() {
	local config=$1 line name want got bad=0
	while IFS= read -r line; do
		if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
			name=${BASH_REMATCH[1]} want=${BASH_REMATCH[2]}
			got=$(grep -E "^$name=" "$config" | cut -d= -f2- || true)
			if [[ $got != "$want" ]]; then
				log "config: $name is ${got:-not set}, the fragment asks for $want"
				bad=1
			fi
		elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
			name=${BASH_REMATCH[1]}
			if grep -qE "^$name=" "$config"; then
				log "config note: $name stays $(grep -E "^$name=" "$config" | cut -d= -f2-) (selected by another option)"
			fi
		fi
	done <"$FRAGMENT"
	return $bad
}

main() {
	local print_key=0
	case ${1:-} in
		--print-key) print_key=1 ;;
		'') ;;
		*) die "unknown argument $1 (usage: build.sh [--print-key])" ;;
	esac

	local version hash key dir
	version=$(source_version)
	hash=$(config_hash)
	key=$version-$hash
	if ((print_key)); then
		printf '%s\n' "$key"
		return
	fi
	dir=$CACHE_ROOT/$key
	if [[ -f $dir/kernel.json ]]; then
		printf '%s\n' "$dir"
		return
	fi

	mkdir -p "$CACHE_ROOT"
	exec 8>"$CACHE_ROOT/.$key.lock"
	if ! flock -n 8; then
		log "another build of $key is running; waiting for it"
		flock 8
	fi
	if [[ -f $dir/kernel.json ]]; then
		printf '%s\n' "$dir"
		return
	fi

	install_deps
	local started=$SECONDS
	mkdir -p "$dir"
	local tree=$dir/linux

	# A build of the same source with another config is the best start: make then rebuilds
	# only what the config change touches (minutes instead of most of an hour).
	local seed
	seed=$(seed_tree "$version" "$key")
	if [[ ! -f $tree/Makefile && -n $seed ]]; then
		log "starting from the tree of $seed"
		rm -rf "$tree.tmp"
		cp -a "$seed/linux" "$tree.tmp"
		rm -f "$tree.tmp/.usip-configured"
		mv "$tree.tmp" "$tree"
	fi

	if [[ ! -f $tree/Makefile ]]; then
		log "downloading $PACKAGE=$version"
		local work=$dir/download
		rm -rf "$work" "$tree"
		mkdir -p "$work"
		# APT::Sandbox::User=root: the cache may be under /root, where _apt cannot write.
		(cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$PACKAGE=$version" >&2)
		log "unpacking"
		dpkg-deb --fsys-tarfile "$work"/*.deb | tar -x -C "$work" --wildcards './usr/src/linux-source-*.tar.*'
		tar -x -C "$work" -f "$work"/usr/src/linux-source-*.tar.*
		mv "$work"/linux-source-6.12 "$tree"
		rm -rf "$work"
	fi

	if [[ ! -f $tree/.usip-configured ]] || ! cmp -s "$FRAGMENT" "$tree/.usip-configured"; then
		log "configuring: x86_64_defconfig + $(basename "$FRAGMENT")"
		make -s -C "$tree" x86_64_defconfig >&2
		(cd "$tree" && scripts/kconfig/merge_config.sh -m -O . .config "$FRAGMENT" >&2)
		make -s -C "$tree" olddefconfig >&2
		check_config "$tree/.config" || die "the final .config differs from $FRAGMENT (see above)"
		cp "$FRAGMENT" "$tree/.usip-configured"
	fi

	log "building in $tree with -j$JOBS (nice $NICE); make's output goes to $dir/build.log"
	if ! nice -n "$NICE" make -C "$tree" -j"$JOBS" all >>"$dir/build.log" 2>&1; then
		tail -n 40 "$dir/build.log" >&2
		die "make failed; the whole output is in $dir/build.log (run again to resume)"
	fi
	# Only right once the build has synced the configuration (include/config/auto.conf).
	local release
	release=$(make -s -C "$tree" kernelrelease)
	[[ $release == *-usip-debug ]] || die "the kernel release $release does not end in -usip-debug"

	log "installing the module tree (modules.builtin, modules.dep)"
	rm -rf "$dir/root"
	make -s -C "$tree" modules_install INSTALL_MOD_PATH="$dir/root" INSTALL_MOD_STRIP=1 >>"$dir/build.log" 2>&1
	rm -f "$dir/root/lib/modules/$release/build" "$dir/root/lib/modules/$release/source"
	[[ -f $dir/root/lib/modules/$release/modules.dep ]] || die "modules_install made no modules.dep"
	strip --strip-debug -o "$dir/vmlinux.tmp" "$tree/vmlinux"
	mv "$dir/vmlinux.tmp" "$dir/vmlinux"
	cp "$tree/arch/x86/boot/bzImage" "$dir/vmlinuz"
	cp "$tree/.config" "$dir/config"

	local seconds=$((SECONDS - started))
	cat >"$dir/kernel.json.tmp" <<-EOF
	{
	  "format": 1,
	  "release": "$release",
	  "sourcePackage": "$PACKAGE",
	  "sourceVersion": "$version",
	  "configHash": "$hash",
	  "buildSeconds": $seconds,
	  "jobs": $JOBS,
	  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	}
	EOF
	mv "$dir/kernel.json.tmp" "$dir/kernel.json"
	log "built $release in $((seconds / 60)) min $((seconds % 60)) s: $dir"
	printf '%s\n' "$dir"
}

main "$@"
