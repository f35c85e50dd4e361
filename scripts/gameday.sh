#!/usr/bin/env bash
# Self-contained game day (`make demo`): a DNS server on loopback with a small CPU
# budget, `dnsdoc chaos --induce dns-flood --verify` against it (load summary, watch
# summary, findings, PASS/FAIL per paired rule), the same window as a doctor report,
# then everything is stopped and removed. DNS goes to 127.0.0.1 only.
set -euo pipefail
dnsdoc=$(realpath "${1:-target/release/dnsdoc}")
port=${GAMEDAY_PORT:-53535}
duration=${GAMEDAY_DURATION:-15s}
work=$(mktemp -d)
cpu_dir=""
dns_pid=""
cleanup() {
  [ -n "$dns_pid" ] && kill "$dns_pid" 2>/dev/null && wait "$dns_pid" 2>/dev/null
  [ -n "$cpu_dir" ] && rmdir "$cpu_dir" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

if [ "$(id -u)" -ne 0 ]; then
  echo "gameday: dnsdoc loads BPF probes; run as root (sudo make demo)" >&2
  exit 3
fi

# A CPU budget of 50 ms per 1 s (like a CoreDNS pod with a tight limits.cpu):
# without one, dnsmasq answers faster than one small machine can flood it. It leaves
# the --baseline load (200 q/s, ~1.5 % of a core for dnsmasq) 3x headroom, while a
# flood runs it dry early in each second and queues for the rest.
quota_us=${GAMEDAY_CPU_QUOTA_US:-50000}
period_us=1000000
v1_cpu=$(awk '$3 == "cgroup" && $4 ~ /(^|,)cpu(,|$)/ {print $2; exit}' /proc/self/mounts)
v2_root=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
if [ -n "$v1_cpu" ]; then
  cpu_dir="$v1_cpu/dnsdoc-gameday-$$"
  mkdir "$cpu_dir"
  echo "$period_us" >"$cpu_dir/cpu.cfs_period_us"
  echo "$quota_us" >"$cpu_dir/cpu.cfs_quota_us"
elif [ -n "$v2_root" ] && grep -qw cpu "$v2_root/cgroup.controllers"; then
  echo +cpu >"$v2_root/cgroup.subtree_control"
  cpu_dir="$v2_root/dnsdoc-gameday-$$"
  mkdir "$cpu_dir"
  echo "$quota_us $period_us" >"$cpu_dir/cpu.max"
else
  echo "gameday: no cgroup cpu controller found: the server runs without a CPU budget and the flood may not reach the latency and failure thresholds" >&2
fi

echo "gameday: starting dnsmasq on 127.0.0.1:$port (cluster-DNS-like zone, CPU budget ${quota_us}us per ${period_us}us)" >&2
sh -c "${cpu_dir:+echo \$\$ > $cpu_dir/cgroup.procs && }exec dnsmasq --keep-in-foreground \
  --no-resolv --no-hosts --bind-interfaces --listen-address=127.0.0.1 --port=$port \
  --pid-file= --user=root --log-facility=/dev/null --local=/cluster.local/ \
  --host-record=kubernetes.default.svc.cluster.local,10.96.0.1 \
  --host-record=kube-dns.kube-system.svc.cluster.local,10.96.0.10" &
dns_pid=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done

echo "gameday: dnsdoc chaos --induce dns-flood --target 127.0.0.1:$port --duration $duration --verify" >&2
status=0
"$dnsdoc" chaos --induce dns-flood --target "127.0.0.1:$port" --duration "$duration" \
  --verify --yes -o "$work/gameday.json" || status=$?

echo
echo "gameday: the same window as a doctor report (dnsdoc doctor --snapshot gameday.json):"
"$dnsdoc" doctor --snapshot "$work/gameday.json" || true   # exit 2 = CRITICAL findings, as a flood should
echo
if [ "$status" -eq 0 ]; then
  echo "gameday: PASS: every paired rule fired"
else
  echo "gameday: FAIL: chaos --verify exited $status" >&2
fi
exit "$status"
