#!/usr/bin/env bash
# Stages a source tree of the Debian packages and builds them with dpkg-buildpackage:
#   dist/packages/usip-dkms_<ver>_all.deb, usip-tools_<ver>_amd64.deb, .changes, .buildinfo
# The workspaces must be built first (nx run deb:package and tools/dev package do that).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cd "$root"

# The npm workspaces whose `npm pack` tarballs make up usip-tools' /usr/lib/usip/node_modules:
# the commands and what they import. The ONE list to extend (e.g. with a per-platform package
# of the napi addon: its tarball then satisfies @usip/netlink-native's dependency on it).
readonly WORKSPACES=(
	packages/netlink-native/npm/linux-x64-gnu
	packages/netlink-native
	packages/client
	packages/cli
	packages/config-agent
)
# The commands' entry points, relative to node_modules (/usr/bin links to them; debian/*.links).
readonly COMMANDS=(@usip/cli/dist/bin.js @usip/config-agent/dist/bin.js)

die() { printf 'tools/deb/package: %s\n' "$*" >&2; exit 1; }
say() { printf 'tools/deb/package: %s\n' "$*" >&2; }

version=$(tr -d '[:space:]' <packages/kernel-module/VERSION)
[[ $version =~ ^[0-9][0-9A-Za-z.+~]*$ ]] || die "packages/kernel-module/VERSION holds '$version', not a Debian upstream version"
changelog_version=$(dpkg-parsechangelog -l tools/deb/debian/changelog -SVersion)
[[ $changelog_version == "$version" ]] ||
	die "tools/deb/debian/changelog is at $changelog_version but packages/kernel-module/VERSION is $version: add a changelog entry (dch -c tools/deb/debian/changelog -v $version)"

for ws in "${WORKSPACES[@]}"; do
	[[ -f $ws/package.json ]] || die "$ws (in WORKSPACES) has no package.json"
done
for cmd in "${COMMANDS[@]}"; do
	f=packages/${cmd#@usip/}
	[[ -f $f ]] || die "$f is missing: build the workspaces first (npx nx run deb:package builds them)"
done
unit=packages/config-agent/systemd/usip-agent.service
[[ -f $unit ]] || die "$unit is missing: usip-tools ships the agent's systemd unit"
for f in packages/cli/man/usip.1 packages/config-agent/man/usip-agent.8 packages/config-agent/man/usip.d.5; do
	[[ -f $f ]] || die "$f is missing (node --import tsx tools/man/generate.ts makes it)"
done

out=$root/dist/packages
build=$out/build
src=$build/usip-$version
rm -rf "$build"
mkdir -p "$src" "$build/tarballs"
rm -f "$out"/usip-dkms_* "$out"/usip-tools_* "$out"/usip_*

say "npm pack ${WORKSPACES[*]}"
deps=()
for ws in "${WORKSPACES[@]}"; do
	tarball=$(cd "$ws" && npm pack --silent --pack-destination "$build/tarballs" | tail -n 1)
	name=$(node -p "require('./$ws/package.json').name")
	deps+=("\"$name\": \"file:../../tarballs/$tarball\"")
done

# The production dependencies, installed from the tarballs (the npm cache first: offline when it
# has everything). The staging package.json is only an install manifest; it is not shipped.
stage=$src/usip
mkdir -p "$stage"
(IFS=,; printf '{ "name": "usip-tools-staging", "private": true, "dependencies": { %s } }\n' "${deps[*]}") >"$stage/package.json"
say "npm install --omit=dev (into $stage)"
(cd "$stage" && npm install --omit=dev --prefer-offline --install-links --no-audit --no-fund --no-package-lock --ignore-scripts --loglevel=error >&2)
rm "$stage/package.json"
# Nothing but what runs: no source maps, TypeScript (sources or declarations: nothing compiles
# against this copy), tests, benchmarks, examples, docs or dotfiles of the dependencies, no
# npm bookkeeping or bin links (Debian's are in /usr/bin).
modules=$stage/node_modules
rm -rf "$modules/.bin" "$modules/.package-lock.json"
for cmd in "${COMMANDS[@]}"; do
	[[ -f $modules/$cmd ]] || die "npm install put no $cmd in $modules: is its workspace in WORKSPACES, and does its package.json \"files\" include it?"
done
# The napi addon, from whichever package carries it.
[[ -n $(find "$modules/@usip" -name '*.node' -type f -print -quit) ]] ||
	die "no napi addon (*.node) in $modules/@usip: build packages/netlink-native (and add its platform package to WORKSPACES, if it has one)"
find "$modules" -mindepth 2 -depth \( -name '.*' -o -type d \( -name test -o -name tests -o -name __tests__ \
	-o -name spec -o -name benchmark -o -name benchmarks -o -name example -o -name examples -o -name docs \
	-o -name fixtures \) \) -exec rm -rf {} +
find "$modules" -type f \( -name '*.map' -o -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.html' \
	-o -name '*.sh' \) -delete
# Files keep their modes from the tarballs; make them the usual 0644, and 0755 for scripts.
find "$modules" -type d -exec chmod 0755 {} +
find "$modules" -type f -exec chmod 0644 {} +
find "$modules" -type f -name '*.js' -exec sh -c 'for f; do [ "$(head -c 2 "$f")" != "#!" ] || chmod 0755 "$f"; done' sh {} +

say "the module source, man pages, unit, examples, schema"
make -s -C packages/kernel-module dkms-source DESTDIR="$src/module" >&2
mkdir -p "$src/man" "$src/systemd"
install -m 0644 packages/cli/man/usip.1 packages/config-agent/man/usip-agent.8 packages/config-agent/man/usip.d.5 "$src/man/"
install -m 0644 "$unit" "$src/systemd/"
compgen -G 'examples/usip.d/*.json' >/dev/null || die "examples/usip.d/*.json is missing: usip-tools ships the example notifier files"
mkdir -p "$src/examples/systemd" "$src/schema"
install -m 0644 examples/usip.d/*.json "$src/examples/"
install -m 0644 examples/systemd/*.service "$src/examples/systemd/"
install -m 0644 packages/config-agent/schema/notifier-file.schema.json "$src/schema/"

cp -a tools/deb/debian "$src/debian"
node tools/deb/scripts/copyright.mjs "$src" usip/node_modules "$src/debian/copyright"

say "dpkg-buildpackage -b (in $src)"
(cd "$src" && dpkg-buildpackage -b -us -uc >&2)
mv "$build"/usip-dkms_"$version"_all.deb "$build"/usip-tools_"$version"_amd64.deb \
	"$build"/usip_"$version"_amd64.changes "$build"/usip_"$version"_amd64.buildinfo "$out/"
rm -rf "$build"
ls -1 "$out"/usip*
