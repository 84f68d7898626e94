#!/bin/sh
# test-user.sh: make the unprivileged user that the rootless tests run berth
# as (berthtest), with a range of 65536 subordinate uids and gids, as a
# rootless podman user has. Run as root. Idempotent.
set -eu
user=${1:-berthtest}

id "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$user"

# add_range FILE FLAG: give the user 65536 ids after every range in FILE
# (useradd may have given one already, from login.defs).
add_range() {
	touch "$1"
	grep -q "^$user:" "$1" && return 0
	start=$(awk -F: 'BEGIN { end = 100000 } $2 + $3 > end { end = $2 + $3 } END { print end }' "$1")
	usermod "$2" "$start-$((start + 65535))" "$user"
}
add_range /etc/subuid --add-subuids
add_range /etc/subgid --add-subgids
