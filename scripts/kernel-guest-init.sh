#!/bin/busybox sh
# shellcheck shell=sh
# /init of the initramfs that scripts/test-kernels.sh builds for each kernel it boots.
# Runs inside the qemu guest under busybox (static, from busybox-static); never on the host.
#
# Stage 1 (pid 1, root = initramfs):
#   load the kernel modules listed in /modules/order (9p, 9pnet_virtio, virtio_pci, overlay
#   and their dependencies, in dependency order), mount the host's / read-only over virtio-9p
#   (tag "hostroot") under a tmpfs overlay (so /etc /var /root /home, the repo etc. are
#   writable, and every write is dropped), plain tmpfs on /tmp and /run, the writable
#   results share (tag "ktout") at /run/kt/out, this kernel's modules at
#   /lib/modules/$(uname -r), proc, sysfs,
#   devtmpfs, devpts, cgroup2, tracefs, bpffs; lo up, a dot-less hostname; then
#   switch_root into the shared root with a copy of busybox and of this script in /run/kt.
# Stage 2 (pid 1, root = the overlay on the host's /):
#   run the job the host left in /run/kt/out (the project's test binaries one after another,
#   or a custom bash command) from the repo dir as root with DNSDOC_REQUIRE_BPF=1 and
#   DNSDOC_EMULATED_CPU=1, write the
#   results and the exit status to the share (and "KT-EXIT <n>" to the console), power off.
#
# Settings come from /kt.conf (written by the host): KT_REPO, KT_MODDIR, KT_HOSTNAME.
# Files in the results share (host: target/kernels/<kernel>/out):
#   in:  job.mode ("tests" or "cmd"), tests.list ("name path" lines), cmd.sh
#   out: uname, ready (guest uptime when the job started), results ("PASS|FAIL rc secs
#        name" per test binary), status (the job's exit status), done (guest uptime at end),
#        native-only.log (tests that skipped themselves as needing native speed)
set -u

log() { echo "kt-init: $*"; }

poweroff_now() {
	sync
	echo o >/proc/sysrq-trigger
	sleep 60
}

# A setup step failed: report it (status 125) and power off instead of hanging.
die() {
	log "FATAL: $*"
	[ -d /run/kt/out ] && echo 125 >/run/kt/out/status 2>/dev/null
	echo "KT-EXIT 125"
	poweroff_now
}

# Guest uptime in seconds (two decimals), for the timings the host prints.
uptime_s() {
	read -r up _ </proc/uptime
	echo "$up"
}

stage1() {
	export PATH=/bin
	/bin/busybox --install -s /bin
	mount -t proc proc /proc
	mount -t sysfs sysfs /sys
	mount -t devtmpfs devtmpfs /dev
	# shellcheck source=/dev/null
	. /kt.conf

	while read -r m; do
		insmod "/modules/$m" || die "insmod $m"
	done </modules/order

	# The host's / read-only over 9p, under a tmpfs overlay: the guest may write anywhere
	# (/etc, /var, /root, /home, the repo, /usr/lib/modules which the host may lack, ...) and
	# every write is dropped at power-off; the host's files are never touched.
	# cache=loose: the share is read-only for the guest and lives only for one run, so caching
	# pages and metadata is safe and makes process start over 9p much cheaper.
	mkdir -p /lower /ovl /newroot
	mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=262144,cache=loose hostroot /lower ||
		die "mount host root over 9p"
	# The upper dir lives on a tmpfs of the initramfs, which switch_root leaves mounted (out
	# of reach) and does not empty.
	mount -t tmpfs -o mode=0755 ovl /ovl
	mkdir -p /ovl/upper /ovl/work
	mount -t overlay overlay -o lowerdir=/lower,upperdir=/ovl/upper,workdir=/ovl/work /newroot ||
		die "overlay on the host root"
	R=/newroot
	# A checkout under /tmp or /run (a CI clone may live there) must stay visible under the
	# fresh tmpfs below: carry its (writable, overlaid) view across.
	case "$KT_REPO" in
	/tmp/* | /run/*)
		mkdir -p /ovl/repo
		mount -o bind "$R$KT_REPO" /ovl/repo || die "bind $KT_REPO"
		;;
	esac
	# Fresh, empty /tmp and /run, like a booted system has.
	mount -t tmpfs -o mode=1777 tmp "$R/tmp" || die "tmpfs on /tmp"
	mount -t tmpfs -o mode=0755 run "$R/run" || die "tmpfs on /run"
	if [ -d /ovl/repo ]; then
		mkdir -p "$R$KT_REPO"
		mount -o move /ovl/repo "$R$KT_REPO" || die "move $KT_REPO back"
	fi
	mkdir -p "$R/run/kt/out" "$R/run/lock"
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 ktout "$R/run/kt/out" ||
		die "mount results share"

	# This kernel's modules (unpacked and depmod-ed on the host) where modprobe and the
	# kernel's module autoloader look (the host's own tree, if any, is hidden).
	krel=$(uname -r)
	mkdir -p "$R/lib/modules/$krel"
	mount -o bind "/lower$KT_MODDIR" "$R/lib/modules/$krel" || die "bind $KT_MODDIR"

	for fs in dev proc sys; do
		mount -o move "/$fs" "$R/$fs" || die "move /$fs"
	done
	mkdir -p "$R/dev/pts" "$R/dev/shm"
	mount -t devpts -o mode=0620,ptmxmode=0666 devpts "$R/dev/pts"
	mount -t tmpfs -o mode=1777 shm "$R/dev/shm"
	mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup" || die "mount cgroup2"
	mount -t tracefs tracefs "$R/sys/kernel/tracing" || log "no tracefs (not fatal)"
	mount -t bpf bpf "$R/sys/fs/bpf" || log "no bpffs (not fatal)"

	# A hostname without a dot: glibc would take the part after a dot as a search domain.
	hostname "$KT_HOSTNAME"
	echo "$KT_HOSTNAME" >"$R/etc/hostname"
	printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t%s\n' \
		"$KT_HOSTNAME" >"$R/etc/hosts"
	ip link set lo up || die "lo up"

	cp /bin/busybox /init "$R/run/kt/"
	cp /kt.conf "$R/run/kt/kt.conf"
	exec switch_root "$R" /run/kt/busybox sh /run/kt/init stage2
}

stage2() {
	# busybox's applets for this script itself, so nothing here execs a file over 9p.
	/run/kt/busybox mkdir -p /run/kt/bin
	/run/kt/busybox --install -s /run/kt/bin
	export PATH=/run/kt/bin
	out=/run/kt/out
	# shellcheck source=/dev/null
	. /run/kt/kt.conf
	# What the job sees: the host's tools, as root, with what cargo test would set.
	# DNSDOC_EMULATED_CPU=1: this is TCG; tests whose assertion is a rate or a latency skip
	# themselves (tests/common require_native_speed) and name themselves in
	# DNSDOC_NATIVE_ONLY_LOG, which the host lists in its report.
	set -- PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root USER=root LOGNAME=root LANG=C.UTF-8 TERM=dumb \
		CI=true DNSDOC_REQUIRE_BPF=1 RUST_BACKTRACE=1 NO_COLOR=1 \
		DNSDOC_EMULATED_CPU=1 DNSDOC_NATIVE_ONLY_LOG="$out/native-only.log" \
		CARGO_MANIFEST_DIR="$KT_REPO" INSTA_WORKSPACE_ROOT="$KT_REPO" INSTA_UPDATE=no

	uname -r >"$out/uname"
	cd "$KT_REPO" || die "cd $KT_REPO"
	uptime_s >"$out/ready"
	log "ready after $(uptime_s) s of guest uptime; running the job on $(uname -r)"

	rc=0
	case "$(cat "$out/job.mode")" in
	tests)
		: >"$out/results"
		while read -r name path; do
			echo "KT-START $name"
			t0=$(uptime_s)
			env -i "$@" "$path" --color never </dev/null
			r=$?
			secs=$(awk -v a="$t0" -v b="$(uptime_s)" 'BEGIN { printf "%.1f", b - a }')
			if [ "$r" -eq 0 ]; then verdict=PASS; else verdict=FAIL; rc=1; fi
			echo "$verdict $r $secs $name" >>"$out/results"
			echo "KT-RESULT $verdict $r $secs $name"
		done <"$out/tests.list"
		;;
	cmd)
		env -i "$@" /bin/bash "$out/cmd.sh" </dev/null
		rc=$?
		;;
	*) die "unknown job.mode" ;;
	esac

	uptime_s >"$out/done"
	echo "$rc" >"$out/status"
	echo "KT-EXIT $rc"
	poweroff_now
}

case "${1:-stage1}" in
stage2) stage2 ;;
*) stage1 ;;
esac
