#!/usr/bin/env bash
# Self-contained demo: starts dnsmasq on 127.0.0.1/::1 port 53535 (never the machine's
# resolver), runs `dnsdoc watch` over a bounded mix of queries (good names, NXDOMAIN,
# REFUSED; UDP and TCP; IPv4 and IPv6; one truncated answer retried over TCP; one
# unanswered query), prints the summary, and stops everything.
set -euo pipefail
dnsdoc=${1:-target/release/dnsdoc}
port=${DEMO_PORT:-53535}
dead_port=$((port + 1))   # nothing listens here: its query becomes a timeout
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: dnsdoc loads BPF probes; run as root (sudo make demo)" >&2
  exit 3
fi

big=$(printf 'x%.0s' $(seq 1 250))
dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
  --listen-address=127.0.0.1,::1 --port="$port" --pid-file= --user=root \
  --local=/test/ --address=/good.test/10.0.0.1 --address=/good.test/fd00::1 \
  --txt-record=big.test,"$big","$big","$big" --log-facility=/dev/null &
pids+=($!)
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done

"$dnsdoc" watch --port "$port" --port "$dead_port" --duration 20s --timeout 1s \
  -o "$work/snapshot.json" >"$work/summary.txt" 2>"$work/watch.err" &
watch_pid=$!
pids+=("$watch_pid")
for _ in $(seq 100); do grep -q "dnsdoc: watching" "$work/watch.err" 2>/dev/null && break; sleep 0.1; done
if ! grep -q "dnsdoc: watching" "$work/watch.err"; then cat "$work/watch.err" >&2; exit 3; fi

echo "demo: sending a bounded mix of queries to dnsmasq on port $port ..." >&2
q() { dig +tries=1 +timeout=1 -p "$port" "$@" >/dev/null || true; }
for i in $(seq 1 20); do q @127.0.0.1 "host$i.good.test"; done
for i in $(seq 1 5); do q @127.0.0.1 "missing$i.test"; done
for i in $(seq 1 3); do q @127.0.0.1 "example$i.com"; done          # REFUSED: no upstream
for i in $(seq 1 5); do q @::1 "v6-$i.good.test" AAAA; done
for i in $(seq 1 3); do q @127.0.0.1 "tcp$i.good.test" +tcp; done
q @::1 gone.test +tcp
q @127.0.0.1 big.test TXT +noedns                                     # truncated, retried over TCP
dig +tries=1 +timeout=1 -p "$dead_port" @127.0.0.1 nobody-home.test >/dev/null || true
sleep 1.2   # let the unanswered query reach the 1 s timeout

kill -INT "$watch_pid"
wait "$watch_pid"
cat "$work/summary.txt"
echo
echo "demo: snapshot JSON (first lines; full schema in docs/SNAPSHOT.md):"
head -n 25 "$work/snapshot.json"
