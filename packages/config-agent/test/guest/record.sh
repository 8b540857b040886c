#!/bin/sh
# The `run` command of the VM test's notifier files: appends one line per event to OUT, tab
# separated: TAG, the USIP_EVENT_* variables TYPE, ACTION, PATH, MOUNT_ID, SOURCE, the notifier
# file and index, and the event's JSON as read from stdin.
#   record.sh OUT TAG
out=${1:?usage: record.sh OUT TAG}
json=$(cat)
printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${2:?}" "${USIP_EVENT_TYPE-}" "${USIP_EVENT_ACTION-}" "${USIP_EVENT_PATH-}" \
	"${USIP_EVENT_MOUNT_ID-}" "${USIP_EVENT_SOURCE-}" "${USIP_NOTIFIER_FILE-}" "${USIP_NOTIFIER_INDEX-}" "$json" >>"$out"
