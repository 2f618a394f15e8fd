# nubis guest: stop every process and leave the disks clean (sourced by nubis-halt and rcK).
# Sourced, never run as a child: kill -1 spares only init and the calling shell itself.
stop_everything() {
	kill -TERM -1 2>/dev/null
	usleep 20000
	kill -KILL -1 2>/dev/null
	sync
	# Other disk file systems first (a rescue session may have left /dev/vdb mounted).
	awk '$1 ~ "^/dev/" && $2 != "/" { print $2 }' /proc/mounts | sort -r | while read -r mnt; do
		umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || mount -o remount,ro "$mnt"
	done
	# Killed processes may hold files open for a moment: retry until / goes read-only.
	i=0
	until mount -o remount,ro / 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -ge 200 ]; then
			echo "nubis: / is still busy, going down anyway"
			break
		fi
		usleep 10000
	done
	sync
}
