#!/bin/sh
# Run by kernel-backends.test.ts as root in a private mount namespace:  sh nobody.sh REPO DIR
# Opens the workspace to uid 65534 (a bind mount at a path anyone may enter, seen only in this
# namespace: the clone may lie in a directory others cannot enter), starts nobody-child.ts as
# uid 65534, and makes a mount, a remount and an umount once it watches. Prints its two lines.
set -eu
repo=$1
dir=$2
open=$(mktemp -d /tmp/usip-open.XXXXXX)
chmod 755 "$open" "$dir"
mount --bind "$repo" "$open"
mkdir -p "$dir/x"
cd "$open"
setpriv --reuid=65534 --regid=65534 --clear-groups env HOME=/tmp node --import tsx packages/client/test/host/nobody-child.ts "$dir" >"$dir/out" 2>"$dir/err" &
pid=$!
until grep -q ready "$dir/out" 2>/dev/null; do
	kill -0 $pid 2>/dev/null || { cat "$dir/err" >&2; exit 1; }
	sleep 0.05
done
mount -t tmpfs nb "$dir/x"
sleep 0.3
mount -o remount,ro "$dir/x"
sleep 0.3
umount "$dir/x"
wait $pid || { cat "$dir/err" >&2; exit 1; }
cat "$dir/out"
