#!/bin/sh
# Runs the Rust tests (wire format fixtures, socket tests against the host kernel's nlctrl)
# and then the TypeScript tests (host nlctrl, and usip in the QEMU guest), both even if the
# first fails, so one run reports every failure. The test-report counter reads both summaries.
set -u
package_dir=$(cd "$(dirname "$0")/.." && pwd)
workspace_root=$(cd "$package_dir/../.." && pwd)

cd "$package_dir" && cargo test --color never
rust_status=$?

cd "$workspace_root" &&
	node --import tsx node_modules/uvu/bin.js packages/netlink-native/test '\.test\.ts$'
js_status=$?

[ "$rust_status" -eq 0 ] && [ "$js_status" -eq 0 ]
