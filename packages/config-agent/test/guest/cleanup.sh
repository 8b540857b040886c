#!/bin/sh
# Stands in for /usr/local/sbin/usip-var-cleanup in the VM test of the docs' low-space example:
# one line per run, with the mount point it was given and what the event said.
printf 'cleanup %s %s %s\n' "${1-}" "${USIP_EVENT_SPACE_STATE-}" "${USIP_EVENT_BYTES_AVAILABLE-}" >>"${USIP_VM_RESULTS:?}/cleanup.log"
