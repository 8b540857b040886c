#!/bin/sh
# Run as root in a private mount namespace (unshare -m --propagation private) by
# ../findmnt.test.ts on this machine and by ../guest/mounts.sh in the guests:
#   sh findmnt.sh REPO DIR RESULTS BACKEND...
# Makes mounts whose names have a space, a tab, a newline, a backslash, a control character,
# UTF-8 and quotes (tmpfs, a bind of a directory, shared, slave and unbindable ones), then runs
# `usip mounts ARGS` and `findmnt ARGS` for each case, with each BACKEND ("default" for none),
# as root and as uid 65534: RESULTS/NAME.usip and RESULTS/NAME.findmnt must be the same bytes,
# NAME.status the two exit statuses. Only the library's width of the terminal is left out:
# stdout is a file here.
set -u
repo=$1
dir=$2
results=$3
shift 3
usip="node $repo/packages/cli/dist/bin.js"

base="$dir/base"
chmod 755 "$dir" # uid 65534 resolves -T paths in it
mkdir -p "$base"
mount -t tmpfs -o size=1m t1 "$base"
cd "$base" || exit 1
tab=$(printf 'tab\there')
nl=$(printf 'nl\nx')
ctl=$(printf 'ctl\001')
mkdir "a b" "$tab" "$nl" 'back\slash' "utf-é✓ 漢字" "q\"uote'" 'dollar$' src "$ctl"
mount -t tmpfs "my src" "a b"
mkdir 'a b/sub' 'a b/d'
mount -t tmpfs t2 "$tab"
mount -t tmpfs t3 "$nl"
mount -t tmpfs 't\4' 'back\slash'
mount -t tmpfs t5 "utf-é✓ 漢字"
mount -t tmpfs t6 "q\"uote'"
mount -t tmpfs t7 "$ctl"
mount --bind src 'dollar$'
mount -o remount,bind,ro 'dollar$'
mount --make-shared 'a b'
mount --bind 'a b' 'a b/sub'
mount --make-slave 'a b/sub'
mount --make-unbindable "utf-é✓ 漢字"
# For the usage columns, mounts whose SIZE, AVAIL, USED and USE% do not change between the two
# runs: a tmpfs of a fixed size and contents (-T), and ramfs mounts (no blocks: USE% "-"; -t
# ramfs shows only these). Without the module, one more behind a directory uid 65534 may not
# search, so that its statfs fails there (empty cells); the module statfs's a mount without
# walking its path, so usip shows that one's usage where findmnt cannot (README).
mkdir sized locked open-ramfs
mount -t tmpfs -o size=2m t8 sized
head -c 300000 /dev/zero >sized/f
mount -t ramfs r1 open-ramfs
if [ ! -d /sys/module/usip ]; then
	chmod 700 locked
	mkdir locked/closed
	mount -t ramfs r2 locked/closed
fi
cd / || exit 1

all=TARGET,SOURCE,FSTYPE,OPTIONS,VFS-OPTIONS,FS-OPTIONS,PROPAGATION,ID,PARENT,MAJ:MIN,FSROOT,OPT-FIELDS
usage=TARGET,SIZE,AVAIL,USED,USE%,FSTYPE

compare() { # compare NAME WHO ARGS...: usip mounts ARGS $backend_option and findmnt ARGS, as WHO (root or nobody)
	name=$1
	who=$2
	shift 2
	if [ "$who" = nobody ]; then
		setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/tmp $nobody_usip mounts "$@" $backend_option >"$results/$name.usip" 2>"$results/$name.usip-err"
		a=$?
		setpriv --reuid=65534 --regid=65534 --clear-groups findmnt "$@" >"$results/$name.findmnt" 2>"$results/$name.findmnt-err"
		b=$?
	else
		$usip mounts "$@" $backend_option >"$results/$name.usip" 2>"$results/$name.usip-err"
		a=$?
		findmnt "$@" >"$results/$name.findmnt" 2>"$results/$name.findmnt-err"
		b=$?
	fi
	echo "$a $b" >"$results/$name.status"
}

# uid 65534 runs usip from a bind mount of the workspace anyone may enter (this namespace only).
open=$(mktemp -d /tmp/usip-open.XXXXXX)
chmod 755 "$open"
mount --bind "$repo" "$open"
nobody_usip="node $open/packages/cli/dist/bin.js"

for backend in "$@"; do
	if [ "$backend" = default ]; then backend_option=; else backend_option="--backend $backend"; fi
	for who in root nobody; do
		p="$backend-$who"
		compare "$p-rn" $who -rn -o TARGET,SOURCE,FSTYPE
		compare "$p-raw-all" $who -r -o "$all"
		compare "$p-tree" $who
		compare "$p-list" $who -l
		compare "$p-list-all" $who -l -o "$all"
		compare "$p-noheadings" $who -n -o "$all"
		compare "$p-json" $who -J -o "$all"
		compare "$p-json-list" $who -J -l
		compare "$p-types" $who -t tmpfs
		compare "$p-types-not" $who -t notmpfs,proc
		compare "$p-types-none" $who -t usipnone
		compare "$p-types-none-list" $who -l -t usipnone
		compare "$p-types-none-json" $who -J -t usipnone
		compare "$p-target" $who -T "$base/a b/d/../d"
		compare "$p-target-missing" $who -T "$base/a b/nothing/.."
		compare "$p-target-json" $who -J -o "$all" -T "$base/utf-é✓ 漢字"
		compare "$p-plus" $who -o +ID,PROPAGATION
		compare "$p-tree-not-first" $who -o ID,PARENT,TARGET,SOURCE
		compare "$p-tree-no-target" $who -J -o ID,SOURCE
		compare "$p-usage" $who -T "$base/sized" -o "$usage"
		compare "$p-usage-bytes" $who -b -T "$base/sized" -o "$usage"
		compare "$p-usage-json" $who -J -T "$base/sized" -o "$usage"
		compare "$p-usage-json-bytes" $who -Jb -T "$base/sized" -o "$usage"
		compare "$p-usage-ramfs" $who -t ramfs -o "$usage"
		compare "$p-usage-ramfs-raw" $who -rb -t ramfs -o "$usage"
		compare "$p-usage-ramfs-json" $who -J -t ramfs -o "$usage"
		compare "$p-usage-ramfs-json-bytes" $who -Jb -t ramfs -o "$usage"
	done
done
umount "$open"
rmdir "$open"
