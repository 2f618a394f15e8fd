# nubis guest: user database helpers for a busybox-only system (no shadow-utils, no PAM).
# Sourced by chpasswd and nubis-config.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

# A user name we are willing to put into /etc/passwd.
valid_user() {
	case "$1" in
	'' | -* | .* | *[!A-Za-z0-9._-]*) return 1 ;;
	esac
	[ "${#1}" -le 32 ]
}

# passwd_field USER N: field N of USER's /etc/passwd line (empty when there is none).
passwd_field() {
	NUBIS_U="$1" awk -F: -v n="$2" '$1 == ENVIRON["NUBIS_U"] { print $n; exit }' /etc/passwd
}

# ensure_user USER: create USER (own group, home /home/USER, or /root for root; shell /bin/sh;
# shadow "*" = no password) unless it exists. Idempotent.
ensure_user() {
	u=$1
	valid_user "$u" || return 1
	if [ -z "$(passwd_field "$u" 1)" ]; then
		if [ "$u" = root ]; then
			uid=0 home=/root
		else
			uid=$(awk -F: 'BEGIN { m = 999 } $3 > m && $3 < 60000 { m = $3 } END { print m + 1 }' \
				/etc/passwd /etc/group)
			home=/home/$u
		fi
		echo "$u:x:$uid:$uid::$home:/bin/sh" >>/etc/passwd
		if ! NUBIS_U="$u" awk -F: '$1 == ENVIRON["NUBIS_U"] { f = 1 } END { exit !f }' /etc/group; then
			echo "$u:x:$uid:" >>/etc/group
		fi
	fi
	if ! NUBIS_U="$u" awk -F: '$1 == ENVIRON["NUBIS_U"] { f = 1 } END { exit !f }' /etc/shadow; then
		echo "$u:*:19000:0:99999:7:::" >>/etc/shadow
	fi
	home=$(passwd_field "$u" 6)
	if [ -n "$home" ] && [ ! -d "$home" ]; then
		mkdir -p "$home"
		chown "$(passwd_field "$u" 3):$(passwd_field "$u" 4)" "$home"
		chmod 0700 "$home"
	fi
	return 0
}

# set_hash USER HASH: put HASH (crypt string, "*" = no password) into USER's /etc/shadow entry.
set_hash() {
	case "$2" in
	'' | *:* | *[[:space:]]*) echo "nubis: refusing an empty or malformed password hash for $1" >&2; return 1 ;;
	esac
	ensure_user "$1" || return 1
	tmp=/etc/.shadow.$$
	NUBIS_U="$1" NUBIS_H="$2" awk -F: -v OFS=: \
		'$1 == ENVIRON["NUBIS_U"] { $2 = ENVIRON["NUBIS_H"] } { print }' /etc/shadow >"$tmp" &&
		chmod 0600 "$tmp" && mv "$tmp" /etc/shadow
}

# authorized_keys USER: path of USER's authorized_keys; creates ~/.ssh (0700) and the file (0600).
authorized_keys() {
	ensure_user "$1" || return 1
	home=$(passwd_field "$1" 6)
	owner="$(passwd_field "$1" 3):$(passwd_field "$1" 4)"
	mkdir -p "$home/.ssh"
	chown "$owner" "$home/.ssh"
	chmod 0700 "$home/.ssh"
	f=$home/.ssh/authorized_keys
	[ -e "$f" ] || : >"$f"
	chown "$owner" "$f"
	chmod 0600 "$f"
	echo "$f"
}

# key_add USER LINE: append LINE to USER's authorized_keys unless it is there already.
key_add() {
	[ -n "$2" ] || return 1
	f=$(authorized_keys "$1") || return 1
	grep -qxF -- "$2" "$f" && return 0
	# qemu-ga writes the file without a final newline
	[ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ] && echo >>"$f"
	printf '%s\n' "$2" >>"$f"
}

# key_remove USER LINE: drop that exact line from USER's authorized_keys.
key_remove() {
	[ -n "$(passwd_field "$1" 1)" ] || return 0
	home=$(passwd_field "$1" 6)
	f=$home/.ssh/authorized_keys
	[ -f "$f" ] || return 0
	grep -qxF -- "$2" "$f" || return 0
	grep -vxF -- "$2" "$f" >"$f.new"
	chown "$(passwd_field "$1" 3):$(passwd_field "$1" 4)" "$f.new"
	chmod 0600 "$f.new"
	mv "$f.new" "$f"
}

# set_hostname NAME
set_hostname() {
	case "$1" in
	'' | -* | *[!A-Za-z0-9.-]*) echo "nubis: invalid hostname" >&2; return 1 ;;
	esac
	[ "${#1}" -le 63 ] || return 1
	echo "$1" >/etc/hostname
	printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$1" >/etc/hosts
	hostname "$1"
}
