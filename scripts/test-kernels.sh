#!/usr/bin/env bash
# test-kernels.sh: the kernel matrix. Boots Debian's stock kernels under qemu on this machine
# and runs dnsdoc's test binaries (or any command) in each, as root, with DNSDOC_REQUIRE_BPF=1.
#
#   kernel  Debian package                      from
#   5.10    linux-image-5.10.0-46-amd64         bullseye (bullseye-security)
#   6.1     linux-image-6.1.0-57-amd64          bookworm (bookworm-security)
#   6.12    linux-image-6.12.117+deb12-amd64    bookworm (bookworm-security)
#
# The host's own kernel (6.18 on our machines) has no image in /boot to boot, so it is not in
# this matrix: the native `make test` covers it.
#
# Usage (as root; `make test-kernels [KERNELS="6.1 6.12"]` runs the default):
#   scripts/test-kernels.sh [--kernel K]... [--only TEST]... [--timeout SECS] [-v]
#   scripts/test-kernels.sh [--kernel K]... [--timeout SECS] [-v] -- COMMAND [ARG...]
#     --kernel K    5.10, 6.1 or 6.12; repeatable; default: all three, one after another
#     --only TEST   run only this test binary (a target name such as watch_live, or
#                   kind:name such as lib:dnsdoc); repeatable; default: every test binary
#     --timeout S   hard limit per kernel for the whole qemu run (default 3600; 900 for a
#                   command): a hung guest fails the run instead of hanging CI
#     -v            stream the guest console (default: only per-test-binary progress)
#     -- COMMAND    run this instead of the tests, with bash, from the repo dir; one argument
#                   is taken as a shell string ('uname -r; ls /sys/fs/cgroup'), several as argv
#
# What it does, per kernel:
#   1. fetch: the kernel .deb through a PRIVATE apt setup under target/kernels/apt (its own
#      sources.list, lists and cache; mirror URIs read from the machine's
#      /etc/apt/sources.list.d/debian.sources, which is never modified); cached in
#      target/kernels/debs, so re-runs download nothing;
#   2. unpack with `dpkg -x` (never installed) and `depmod -b ROOT VER`;
#   3. build an initramfs: busybox-static, scripts/kernel-guest-init.sh as /init, and the
#      9p, 9pnet_virtio, virtio_pci, overlay modules with their dependencies in the order
#      `modprobe -d ROOT -S VER --show-depends` gives (decompressed: 6.12's are .ko.xz);
#   4. boot it: qemu TCG (KVM does not work here), the host's / shared read-only over
#      virtio-9p, target/kernels/<K>/out shared writable for the job and its results; the
#      guest side is described in scripts/kernel-guest-init.sh;
#   5. report: uname -r of the guest, prep/boot/test times (host clock), per-test-binary
#      PASS/FAIL, and on failure the failing tests with their panic messages.
# Then a summary table; the exit status is non-zero if any kernel failed. The full guest
# console of each run is kept in target/kernels/logs/<K>-<time>.console.log (the last 10 per
# kernel), with target/kernels/<K>/console.log pointing at the latest.
#
# The default job builds the test binaries on the host first (`cargo test --no-run
# --message-format=json-render-diagnostics`) and runs them in the guest one after another
# from the repo dir, as `cargo test` would; the guest run fails if any of them fails.
# The guest also sets DNSDOC_EMULATED_CPU=1: tests whose assertion is a rate or a latency
# (meaningless under TCG, 10-50x slower than native) skip themselves and are listed per
# kernel and counted in the summary's "native" column; `make test` runs them natively.
#
# Host packages it installs if missing (idempotently, like scripts/install-deps.sh):
# busybox-static, kmod, qemu-system-x86 (from <codename>-backports through the private apt
# setup when Debian's own qemu-system-x86 would remove an installed package, e.g. a
# backported qemu-utils), plus scripts/install-deps.sh all for the default job. bpftool is not
# needed. Only one guest runs at a time (2 cores): a lock serialises concurrent invocations.
set -euo pipefail

export LC_ALL=C
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPTS="$REPO/scripts"
WORK="$REPO/target/kernels"
CARGO=${CARGO:-cargo}
KEYRING_DEFAULT=/usr/share/keyrings/debian-archive-keyring.gpg
SYSTEM_SOURCES=/etc/apt/sources.list.d/debian.sources

declare -A KPKG=(
	[5.10]=linux-image-5.10.0-46-amd64
	[6.1]=linux-image-6.1.0-57-amd64
	[6.12]=linux-image-6.12.117+deb12-amd64
)
ALL_KERNELS=(5.10 6.1 6.12)
# Modules the initramfs needs (each with its dependencies; built-in ones are skipped).
INITRD_MODULES=(virtio_pci 9pnet_virtio 9p overlay)
# Guest kernel command line. panic=-1 + qemu -no-reboot: a panic ends qemu at once.
# mitigations=off only makes TCG faster; it changes nothing the BPF verifier does for root.
KERNEL_APPEND="console=ttyS0 panic=-1 mitigations=off random.trust_cpu=on ${KT_APPEND:-}"

usage() {
	sed -n '/^# Usage/,/^#$/p' "$0" | sed 's/^# \{0,1\}//'
	echo "(more in the header of $0)"
}

log() { echo "test-kernels: $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

# Seconds since the epoch with fractions, and a difference printed with one decimal.
now() { echo "$EPOCHREALTIME"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------- arguments
kernels=()
only=()
timeout=""
verbose=0
cmd=()
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel)
		[ $# -ge 2 ] || die "--kernel needs a value"
		[ -n "${KPKG[$2]:-}" ] || die "unknown kernel '$2' (known: ${ALL_KERNELS[*]})"
		kernels+=("$2")
		shift 2
		;;
	--kernel=*)
		k=${1#--kernel=}
		[ -n "${KPKG[$k]:-}" ] || die "unknown kernel '$k' (known: ${ALL_KERNELS[*]})"
		kernels+=("$k")
		shift
		;;
	--only)
		[ $# -ge 2 ] || die "--only needs a value"
		only+=("$2")
		shift 2
		;;
	--timeout)
		if [ $# -lt 2 ] || ! [[ $2 =~ ^[0-9]+$ ]]; then die "--timeout needs a number of seconds"; fi
		timeout=$2
		shift 2
		;;
	-v | --verbose)
		verbose=1
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	--)
		shift
		[ $# -gt 0 ] || die "'--' must be followed by a command"
		cmd=("$@")
		break
		;;
	*)
		usage >&2
		exit 64
		;;
	esac
done
[ ${#kernels[@]} -gt 0 ] || kernels=("${ALL_KERNELS[@]}")
if [ ${#cmd[@]} -gt 0 ]; then
	[ ${#only[@]} -eq 0 ] || die "--only selects test binaries; it makes no sense with a command"
	timeout=${timeout:-900}
else
	timeout=${timeout:-3600}
fi

mkdir -p "$WORK"
# One guest at a time on this 2-core machine, and no two runs sharing target/kernels.
exec 9>"$WORK/.lock"
flock -n 9 || {
	log "another test-kernels run holds $WORK/.lock; waiting for it"
	flock 9
}

qpid=""
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
	# Only the qemu (under timeout) that this script started, by its pid.
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then kill "$qpid" 2>/dev/null || true; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- private apt setup
# Its own sources.list, lists and cache under target/kernels/apt; the machine's apt
# configuration and lists are left alone. Mirrors and keyring come from debian.sources.
APT_DIR="$WORK/apt"
APT_OPTS=(
	-o "Dir::Etc::sourcelist=$APT_DIR/sources.list"
	-o Dir::Etc::sourceparts=/dev/null
	-o "Dir::State::lists=$APT_DIR/lists"
	-o "Dir::Cache=$APT_DIR/cache"
	-o Acquire::Languages=none
	# Our dirs are root's; apt's _apt sandbox user could not write them (and warns).
	-o APT::Sandbox::User=root
)
# shellcheck source=/dev/null
host_codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")

# Prints "suite uri signed-by" for every suite of every enabled deb stanza of debian.sources.
system_suites() {
	[ -r "$SYSTEM_SOURCES" ] || die "$SYSTEM_SOURCES not found: cannot tell which Debian mirror to use"
	awk -v key="$KEYRING_DEFAULT" '
		BEGIN { RS = ""; FS = "\n" }
		{
			types = ""; uri = ""; suites = ""; signed = key; enabled = "yes"
			for (i = 1; i <= NF; i++) {
				line = $i
				if (line ~ /^[ \t]*#/) continue
				split(line, kv, ":")
				f = tolower(kv[1]); sub(/^[^:]*:[ \t]*/, "", line)
				if (f == "types") types = line
				else if (f == "uris") { split(line, u, /[ \t]+/); uri = u[1] }
				else if (f == "suites") suites = line
				else if (f == "signed-by" && line ~ /^\//) signed = line
				else if (f == "enabled") enabled = tolower(line)
			}
			if (types !~ /(^|[ \t])deb([ \t]|$)/ || uri == "" || enabled == "no") next
			n = split(suites, s, /[ \t]+/)
			for (j = 1; j <= n; j++) if (s[j] != "") print s[j], uri, signed
		}' "$SYSTEM_SOURCES"
}

# Writes target/kernels/apt/sources.list: the kernels' suites (bullseye and bookworm, each
# with its -security suite, where Debian publishes kernel ABI updates) and the host's
# -backports (for qemu only, see ensure_qemu).
write_private_sources() {
	local main="" sec="" key="" suite uri signed
	while read -r suite uri signed; do
		case "$suite" in
		*-security) [ -n "$sec" ] || sec=$uri ;;
		*-*) ;;
		*) [ -n "$main" ] || { main=$uri; key=$signed; } ;;
		esac
	done < <(system_suites)
	[ -n "$main" ] || die "no main Debian suite in $SYSTEM_SOURCES"
	[ -n "$sec" ] || die "no -security suite in $SYSTEM_SOURCES (the kernels are published there)"
	[ -r "$key" ] || die "keyring $key not readable"
	mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
	local tmp="$APT_DIR/sources.list.new"
	{
		echo "# Written by scripts/test-kernels.sh from $SYSTEM_SOURCES; private to it."
		for s in bullseye bookworm; do
			echo "deb [signed-by=$key] $main $s main"
			echo "deb [signed-by=$key] $sec $s-security main"
		done
		[ -z "$host_codename" ] || echo "deb [signed-by=$key] $main $host_codename-backports main"
	} >"$tmp"
	if cmp -s "$tmp" "$APT_DIR/sources.list"; then rm -f "$tmp"; else mv "$tmp" "$APT_DIR/sources.list"; fi
}

apt_updated=0
private_apt_update() {
	[ "$apt_updated" -eq 0 ] || return 0
	write_private_sources
	log "apt-get update (private lists in $APT_DIR)"
	apt-get "${APT_OPTS[@]}" -qq update >&2 || die "apt-get update with $APT_DIR/sources.list failed"
	apt_updated=1
}

# ---------------------------------------------------------------- host tools
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

need_root() {
	[ "$(id -u)" -eq 0 ] || die "missing packages ($*); run as root or install them yourself"
}

# apt-get install with the machine's own configuration, refusing anything that would remove
# an installed package.
system_install() {
	need_root "$@"
	export DEBIAN_FRONTEND=noninteractive
	if apt-get install -s --no-install-recommends "$@" 2>/dev/null | grep -q '^Remv '; then
		return 1
	fi
	log "installing $* (apt-get)"
	apt-get update -qq >&2
	if apt-get install -s --no-install-recommends "$@" 2>/dev/null | grep -q '^Remv '; then
		return 1
	fi
	apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_qemu() {
	command -v qemu-system-x86_64 >/dev/null && return 0
	system_install qemu-system-x86 && return 0
	# Debian's qemu-system-x86 would remove something: on our machines the installed
	# qemu-utils is bookworm-backports' 10.x, which Breaks qemu-system-common << 8. Take the
	# matching qemu-system-x86 from -backports through the private lists instead.
	[ -n "$host_codename" ] || die "installing qemu-system-x86 would remove packages; install it yourself"
	private_apt_update
	if apt-get "${APT_OPTS[@]}" install -s --no-install-recommends -t "$host_codename-backports" \
		qemu-system-x86 2>/dev/null | grep -q '^Remv '; then
		die "installing qemu-system-x86 would remove packages, from $host_codename and from $host_codename-backports; install it yourself"
	fi
	log "installing qemu-system-x86 from $host_codename-backports (Debian's would remove packages)"
	DEBIAN_FRONTEND=noninteractive apt-get "${APT_OPTS[@]}" install -y -qq --no-install-recommends \
		-t "$host_codename-backports" qemu-system-x86 >/dev/null
}

ensure_host_tools() {
	local missing=() p
	for p in busybox-static kmod; do installed "$p" || missing+=("$p"); done
	if [ ${#missing[@]} -gt 0 ]; then
		system_install "${missing[@]}" || die "installing ${missing[*]} would remove packages; install them yourself"
	fi
	ensure_qemu
	command -v jq >/dev/null || command -v python3 >/dev/null ||
		die "need jq or python3 to read cargo's JSON"
}

# ---------------------------------------------------------------- per-kernel preparation
# Sets DEB to the cached .deb of package $1, downloading it first if needed.
fetch_deb() {
	local pkg=$1 dir="$WORK/debs" f
	mkdir -p "$dir"
	for f in "$dir/${pkg}"_*.deb; do
		[ -f "$f" ] && {
			DEB=$f
			return 0
		}
	done
	private_apt_update
	log "downloading $pkg"
	rm -rf "$dir/.partial"
	mkdir -p "$dir/.partial"
	(cd "$dir/.partial" && apt-get "${APT_OPTS[@]}" -qq download "$pkg" >&2) ||
		die "apt-get download $pkg failed (superseded kernel ABIs leave the archive: update KPKG in $0)"
	for f in "$dir/.partial/${pkg}"_*.deb; do
		mv "$f" "$dir/"
		DEB="$dir/$(basename "$f")"
	done
	rm -rf "$dir/.partial"
	[ -n "${DEB:-}" ] || die "apt-get download $pkg left no .deb"
}

# Unpacks $DEB into $1/root (once per .deb) and runs depmod; sets KREL.
unpack_kernel() {
	local root="$1/root" stamp="$1/root/.kt-unpacked-from"
	if [ "$(cat "$stamp" 2>/dev/null)" != "$(basename "$DEB")" ]; then
		log "unpacking $(basename "$DEB")"
		rm -rf "$root"
		mkdir -p "$root"
		dpkg -x "$DEB" "$root"
		KREL=$(ls "$root/lib/modules")
		depmod -b "$root" "$KREL"
		basename "$DEB" >"$stamp"
	fi
	KREL=$(ls "$root/lib/modules")
	[ -f "$root/boot/vmlinuz-$KREL" ] || die "no $root/boot/vmlinuz-$KREL in $(basename "$DEB")"
}

# Builds $1/initramfs.cpio.gz for kernel $KREL unpacked in $1/root; $2 is the hostname.
build_initramfs() {
	local kdir=$1 root="$1/root" ird="$1/initramfs.d" m p base seen=" "
	rm -rf "$ird"
	mkdir -p "$ird"/{bin,dev,proc,sys,newroot,modules}
	cp /bin/busybox "$ird/bin/busybox"
	install -m 0755 "$SCRIPTS/kernel-guest-init.sh" "$ird/init"
	# The kernel's built-in initramfs has /dev/console too; this one is for safety.
	mknod -m 600 "$ird/dev/console" c 5 1 2>/dev/null || true
	: >"$ird/modules/order"
	for m in "${INITRD_MODULES[@]}"; do
		while read -r p; do
			base=$(basename "$p")
			base=${base%.xz}
			base=${base%.zst}
			base=${base%.gz}
			case "$seen" in *" $base "*) continue ;; esac
			seen="$seen$base "
			case "$p" in
			*.ko.xz) xz -dc "$p" >"$ird/modules/$base" ;;
			*.ko.zst) zstd -qdc "$p" >"$ird/modules/$base" ;;
			*.ko.gz) gzip -dc "$p" >"$ird/modules/$base" ;;
			*) cp "$p" "$ird/modules/$base" ;;
			esac
			echo "$base" >>"$ird/modules/order"
		done < <(modprobe -d "$root" -S "$KREL" --show-depends "$m" | awk '$1 == "insmod" { print $2 }')
	done
	case "$REPO$root" in *"'"*) die "paths with a single quote are not supported" ;; esac
	{
		echo "KT_REPO='$REPO'"
		echo "KT_MODDIR='$root/lib/modules/$KREL'"
		echo "KT_HOSTNAME='$2'"
	} >"$ird/kt.conf"
	(cd "$ird" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 >"$kdir/initramfs.cpio.gz")
}

# ---------------------------------------------------------------- the job
# Fills $1 (the results share) with the job: the test list or the command.
write_job() {
	local out=$1
	if [ ${#cmd[@]} -gt 0 ]; then
		echo cmd >"$out/job.mode"
		if [ ${#cmd[@]} -eq 1 ]; then
			printf '%s\n' "${cmd[0]}" >"$out/cmd.sh"
		else
			printf '%q ' "${cmd[@]}" >"$out/cmd.sh"
			echo >>"$out/cmd.sh"
		fi
	else
		echo tests >"$out/job.mode"
		cp "$WORK/tests.list" "$out/tests.list"
	fi
}

# Builds the test binaries on the host; writes "kind:name path" lines to target/kernels/tests.list.
build_tests() {
	log "building test binaries ($CARGO test --no-run)"
	local json="$WORK/cargo-test.json" sel="$WORK/tests.all"
	(cd "$REPO" && "$CARGO" test --no-run --message-format=json-render-diagnostics >"$json") ||
		die "cargo test --no-run failed"
	if command -v jq >/dev/null; then
		jq -r 'select(.reason == "compiler-artifact" and .profile.test and .executable != null)
			| "\(.target.kind[0]):\(.target.name) \(.executable)"' "$json"
	else
		python3 -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["profile"]["test"] and m.get("executable"):
        print("%s:%s %s" % (m["target"]["kind"][0], m["target"]["name"], m["executable"]))
' "$json"
	fi | sort -u >"$sel"
	[ -s "$sel" ] || die "cargo built no test binaries"
	if [ ${#only[@]} -eq 0 ]; then
		# test:fuzz is pure logic (no kernel, no BPF) and the slowest binary under TCG
		# (80-140 s per kernel); test:continuous_long replays a generated capture file
		# through the user-space pipeline (no kernel either; 10 s natively, minutes under
		# TCG). `make test` runs both natively; --only still runs them.
		grep -v -e '^test:fuzz ' -e '^test:continuous_long ' "$sel" >"$WORK/tests.list"
		log "not run in the guests: test:fuzz, test:continuous_long (user space only, no kernel involved; make test runs them)"
	else
		: >"$WORK/tests.list"
		local o kind_name path found
		for o in "${only[@]}"; do
			found=0
			while read -r kind_name path; do
				if [ "$o" = "$kind_name" ] || [ "$o" = "${kind_name#*:}" ]; then
					echo "$kind_name $path" >>"$WORK/tests.list"
					found=1
				fi
			done <"$sel"
			[ "$found" -eq 1 ] || die "--only $o: no such test binary (have: $(cut -d' ' -f1 "$sel" | tr '\n' ' '))"
		done
	fi
	log "test binaries: $(cut -d' ' -f1 "$WORK/tests.list" | tr '\n' ' ')"
}

# ---------------------------------------------------------------- boot one kernel
# Reads the guest console as it is written: echoes it all with -v, else only per-binary
# progress; stamps the marker lines with the host's clock into $1/t.* for the timings.
watch_console() {
	local kdir=$1 line ts="" name verdict code gsecs
	while IFS= read -r line; do
		line=${line%$'\r'}
		[ "$verbose" -eq 0 ] || printf '%s\n' "$line"
		case "$line" in
		"kt-init: ready"*) now >"$kdir/t.ready" ;;
		"KT-START "*)
			ts=$(now)
			echo "${line#KT-START }" >"$kdir/t.running"
			[ "$verbose" -eq 1 ] || echo "   running ${line#KT-START }"
			;;
		"KT-RESULT "*)
			read -r verdict code gsecs name <<<"${line#KT-RESULT }"
			[ -z "$ts" ] || gsecs=$(secs "$ts" "$(now)")
			rm -f "$kdir/t.running"
			printf '   %-4s %-28s %7s s  (exit %s)\n' "$verdict" "$name" "$gsecs" "$code" >>"$kdir/t.results"
			[ "$verbose" -eq 1 ] || tail -n 1 "$kdir/t.results"
			;;
		"KT-EXIT "*) now >"$kdir/t.exit" ;;
		esac
	done
}

# Boots kernel $1 (a label such as 6.1) and runs the job; fills the R_* result arrays.
declare -A R_UNAME R_PREP R_BOOT R_TEST R_RESULT R_LOG R_NATIVE
run_kernel() {
	local k=$1 kdir="$WORK/$1" t0 t1 t2 rc=0 out log qlog status="" ready="" done_="" wall
	t0=$(now)
	mkdir -p "$kdir"
	DEB=""
	fetch_deb "${KPKG[$k]}"
	unpack_kernel "$kdir"
	build_initramfs "$kdir" "kt-${k//./-}"
	out="$kdir/out"
	rm -rf "$out"
	mkdir -p "$out"
	write_job "$out"
	# A console log per run (the last 10 per kernel are kept); <K>/console.log -> the latest.
	mkdir -p "$WORK/logs"
	log="$WORK/logs/$k-$(date +%Y%m%d-%H%M%S).console.log"
	qlog="${log%.console.log}.qemu.log"
	: >"$log"
	rm -f "$kdir/qemu.log"
	ln -sfn "$log" "$kdir/console.log"
	local logs=("$WORK/logs/$k-"*.console.log) f # sorted by name, i.e. by time
	if [ ${#logs[@]} -gt 10 ]; then
		for f in "${logs[@]:0:${#logs[@]}-10}"; do rm -f "$f" "${f%.console.log}.qemu.log"; done
	fi
	rm -f "$kdir"/t.*
	t1=$(now)
	R_PREP[$k]=$(secs "$t0" "$t1")
	R_LOG[$k]=$log
	echo "== $k: booting $KREL (${KPKG[$k]}), timeout ${timeout}s; console: $log"

	timeout -k 10 "$timeout" qemu-system-x86_64 \
		-accel tcg,thread=multi -cpu max -m 2G -smp 2 \
		-nodefaults -no-user-config -display none -no-reboot \
		-chardev "file,id=con,path=$log,append=on" -serial chardev:con \
		-kernel "$kdir/root/boot/vmlinuz-$KREL" -initrd "$kdir/initramfs.cpio.gz" \
		-append "$KERNEL_APPEND" \
		-fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
		-device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
		-fsdev "local,id=ktout,path=$out,security_model=none" \
		-device virtio-9p-pci,fsdev=ktout,mount_tag=ktout \
		</dev/null >"$qlog" 2>&1 &
	qpid=$!
	tail -n +1 -f --pid="$qpid" "$log" | watch_console "$kdir" &
	local tailpid=$!
	wait "$qpid" || rc=$?
	qpid=""
	wait "$tailpid" 2>/dev/null || true
	t2=$(now)
	wall=$(secs "$t1" "$t2")

	R_UNAME[$k]=$(cat "$out/uname" 2>/dev/null || echo "?")
	status=$(cat "$out/status" 2>/dev/null || true)
	# Fallback: the marker line on the console.
	[ -n "$status" ] || status=$(tr -d '\r' <"$log" | sed -n 's/^KT-EXIT \([0-9]*\)$/\1/p' | tail -n 1)
	# Times on the host's clock (the guest's clock under TCG is not to be trusted early in
	# boot): boot = qemu start to the guest's "ready" line, test = from there to KT-EXIT.
	ready=$(cat "$kdir/t.ready" 2>/dev/null || true)
	done_=$(cat "$kdir/t.exit" 2>/dev/null || echo "$t2")
	if [ -n "$ready" ]; then
		R_BOOT[$k]=$(secs "$t1" "$ready")
		R_TEST[$k]=$(secs "$ready" "$done_")
	else
		R_BOOT[$k]="-"
		R_TEST[$k]="-"
	fi

	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		R_RESULT[$k]="FAIL (timeout ${timeout}s)"
	elif [ -z "$status" ]; then
		R_RESULT[$k]="FAIL (no exit status from the guest; qemu exit $rc)"
	elif [ "$status" -eq 0 ]; then
		R_RESULT[$k]=PASS
	elif [ "$status" -eq 125 ]; then
		R_RESULT[$k]="FAIL (guest setup failed)"
	else
		R_RESULT[$k]="FAIL (exit $status)"
	fi

	echo "== $k: uname -r ${R_UNAME[$k]}; prep ${R_PREP[$k]} s, boot ${R_BOOT[$k]} s, test ${R_TEST[$k]} s (wall $wall s): ${R_RESULT[$k]}"
	if [ "$verbose" -eq 1 ] && [ -s "$kdir/t.results" ]; then
		cat "$kdir/t.results"
	fi
	# Tests that skipped themselves here as meaningless on an emulated CPU (they run in
	# `make test`): never silent.
	R_NATIVE[$k]=0
	if [ -s "$out/native-only.log" ]; then
		R_NATIVE[$k]=$(sort -u "$out/native-only.log" | wc -l)
		echo "   ${R_NATIVE[$k]} test(s) need native speed and skipped themselves here (make test runs them):"
		sort -u "$out/native-only.log" | sed 's/^NEEDS NATIVE SPEED /     /'
	fi
	if [ -f "$kdir/t.running" ]; then
		echo "   unfinished: $(cat "$kdir/t.running") (still running when the guest stopped)"
	fi
	if [ "${R_RESULT[$k]}" != PASS ]; then
		if [ "$verbose" -eq 1 ]; then
			:
		elif grep -q '^   FAIL ' "$kdir/t.results" 2>/dev/null; then
			# Failing tests: libtest's "... FAILED" lines and each panic with its message.
			echo "---- failures in $log"
			tr -d '\r' <"$log" | awk '
				/^KT-START / { bin = substr($0, 10) }
				/ \.\.\. FAILED$/ { print bin ": " $0 }
				/panicked at/ { print bin ": " $0; n = 4; next }
				n > 0 && !/^stack backtrace:/ { print "      " $0; n-- ; next }
				{ n = 0 }' | head -n 80
			echo "----"
		else
			echo "---- last 40 lines of $log"
			tr -d '\r' <"$log" | tail -n 40
			echo "----"
		fi
		[ ! -s "$qlog" ] || { echo "qemu said:"; cat "$qlog"; }
		echo "== $k: FAILED; full guest console: $log"
	fi
}

# ---------------------------------------------------------------- main
tp0=$(now)
ensure_host_tools
if [ ${#cmd[@]} -eq 0 ]; then
	"$SCRIPTS/install-deps.sh" all
	build_tests
fi
tp1=$(now)
echo "== host prep (tools, build): $(secs "$tp0" "$tp1") s"

for k in "${kernels[@]}"; do
	run_kernel "$k"
done

echo
printf '%-6s %-24s %8s %8s %8s %7s  %s\n' kernel "uname -r" "prep s" "boot s" "test s" native result
fail=0
for k in "${kernels[@]}"; do
	printf '%-6s %-24s %8s %8s %8s %7s  %s\n' "$k" "${R_UNAME[$k]}" "${R_PREP[$k]}" "${R_BOOT[$k]}" \
		"${R_TEST[$k]}" "${R_NATIVE[$k]}" "${R_RESULT[$k]}"
	[ "${R_RESULT[$k]}" = PASS ] || fail=1
done
echo "(native: tests that skipped themselves as needing native speed, DNSDOC_EMULATED_CPU=1)"
if [ "$fail" -ne 0 ]; then
	for k in "${kernels[@]}"; do
		[ "${R_RESULT[$k]}" = PASS ] || echo "console log of $k: ${R_LOG[$k]}"
	done
fi
exit "$fail"
