#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Runs the kernel's checkpatch.pl (fetched and cached by fetch-checkpatch.sh)
# over every C source and header of the module, the generated ones included.
# Exits non-zero if checkpatch reports any error or warning.
set -eu

module_dir=$(cd "$(dirname "$0")/.." && pwd)
checkpatch=$("$module_dir/scripts/fetch-checkpatch.sh")

cd "$module_dir"
# --no-tree: we are not inside a kernel tree; --file: these are files, not patches.
exec perl "$checkpatch" --no-tree --file --strict --color=never \
	src/*.c src/*.h include/uapi/linux/usip.h
