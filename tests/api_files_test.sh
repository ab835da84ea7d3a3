#!/usr/bin/env bash
# End-to-end test of the CLI's file transfer and --follow commands against one storjnetd running two nodes:
# send-file / receive-file move a SIZE file (default 1G) bit-exact and report the throughput; a file over
# --max-size is refused with the reason on both sides; events --follow and messages --follow print what
# arrives and exit 0 on SIGINT. Waits read the processes' output until the expected line shows, each bounded
# by a generous deadline.
# Usage: api_files_test.sh STORJNETD STORJNET_CLI [SIZE]   (SIZE as head -c takes it: 64M, 1G)
set -uo pipefail
DAEMON=$1
CLI=$2
SIZE=${3:-1G}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/storjnet-files-test.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1
FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
# wait_for FILE PATTERN SECONDS PID: until FILE has a line matching PATTERN (grep -E), PID exits, or the deadline.
wait_for() {
  local file=$1 pattern=$2 seconds=$3 pid=${4:-}
  local deadline=$((SECONDS + seconds))
  while [ $SECONDS -lt $deadline ]; do
    grep -Eq -- "$pattern" "$file" 2>/dev/null && return 0
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then grep -Eq -- "$pattern" "$file" 2>/dev/null; return; fi
    sleep 0.05
  done
  return 1
}

for attempt in 0 1 2 3 4; do
  BASE=$(( 21000 + ( ($$ * 6007 + attempt * 104729) % 380 ) * 100 ))
  "$DAEMON" --nodes 2 --port $BASE --api-port $((BASE + 50)) --host 127.0.0.1 --data-dir storjnet-data \
    --log-level warn >"$WORK/daemon.out" 2>"$WORK/daemon.err" &
  DPID=$!
  if wait_for "$WORK/daemon.out" "nodes ready" 60 $DPID; then PIDS+=("$DPID"); break; fi
  wait $DPID; rc=$?
  [ $rc -eq 2 ] || { echo "storjnetd failed (exit $rc): $(cat "$WORK/daemon.err")" >&2; exit 1; }
done
grep -q "nodes ready" "$WORK/daemon.out" || { echo "storjnetd did not start" >&2; exit 1; }
id_of() { sed -n "s/^node $1 id=\([0-9a-f]*\) .*/\1/p" "$WORK/daemon.out"; }
C0=("$CLI" --api "http://127.0.0.1:$((BASE + 50))")
C1=("$CLI" --api "http://127.0.0.1:$((BASE + 51))")
ID0=$(id_of 0); ID1=$(id_of 1)

# --- a SIZE file from node 0 to node 1, bit-exact ---
head -c "$SIZE" /dev/urandom >big.bin || { echo "cannot make the test file" >&2; exit 1; }
BYTES=$(stat -c %s big.bin)
mkdir in
"${C1[@]}" receive-file --dir in --once >recv.out 2>recv.err &
RPID=$!; PIDS+=("$RPID")
wait_for recv.err "receiving files into $WORK/in" 30 $RPID || fail "receive-file did not start: $(cat recv.err)"
T0=$(date +%s.%N)
"${C0[@]}" send-file "$ID1" big.bin >send.out 2>send.err
rc=$?
T1=$(date +%s.%N)
[ $rc -eq 0 ] || fail "send-file exit $rc: $(cat send.err)"
wait $RPID; rc=$?
[ $rc -eq 0 ] || fail "receive-file --once exit $rc: $(cat recv.err)"
grep -Eq "^sent big\.bin \(.*\) in .* to ${ID1:0:12}…; the receiver checked its BLAKE2b-256 hash$" send.out \
  || fail "send-file output: $(cat send.out)"
grep -q "^received big.bin (.*) from ${ID0:0:12}…, hash checked: $WORK/in/big.bin$" recv.out \
  || fail "receive-file output: $(cat recv.out)"
grep -q "^storjnet: receiving big.bin (.*) from ${ID0:0:12}…$" recv.err || fail "receive-file announcement: $(cat recv.err)"
# Not a terminal: plain progress lines, no carriage returns.
grep -q $'\r' send.err && fail "progress redraws (\\r) on a non-terminal"
cmp big.bin in/big.bin || fail "the received file differs"
[ -z "$(find in -name '.storjnet-*')" ] || fail "a .part file was left: $(ls -a in)"
echo "file transfer: $BYTES bytes in $(echo "$T1 - $T0" | bc) s: $(echo "scale=1; $BYTES / ($T1 - $T0) / 1048576" | bc) MiB/s"
rm -f big.bin in/big.bin
# Receive mode went off with --once: the daemon says so.
"${C1[@]}" --json call file_transfers >ft.json 2>&1
grep -q '"receive":null' ft.json || fail "receive mode still on after --once: $(cat ft.json)"

# --- over --max-size: refused, nothing written, both sides say why ---
head -c 10000 /dev/urandom >small.bin
"${C1[@]}" receive-file --dir in --once --max-size 1K >recv2.out 2>recv2.err &
RPID=$!; PIDS+=("$RPID")
wait_for recv2.err "receiving files into" 30 $RPID || fail "receive-file did not start: $(cat recv2.err)"
"${C0[@]}" send-file "$ID1" small.bin >send2.out 2>send2.err
rc=$?
[ $rc -eq 1 ] || fail "send-file of a too large file: exit $rc"
grep -q "send-file failed: refused by the receiver: too large: 10000 bytes, at most 1024" send2.err \
  || fail "refusal message: $(cat send2.err)"
wait $RPID; rc=$?
[ $rc -eq 1 ] || fail "receive-file --once after a refusal: exit $rc"
grep -q "failed: too large" recv2.err || fail "receiver's refusal message: $(cat recv2.err)"
[ -z "$(ls -A in)" ] || fail "a refused file left something: $(ls -A in)"
# Bad usage: a missing file is the daemon's error, exit 1.
"${C0[@]}" send-file "$ID1" no-such-file >/dev/null 2>send3.err
rc=$?
[ $rc -eq 1 ] && grep -q "cannot open $WORK/no-such-file" send3.err || fail "missing file: exit $rc, $(cat send3.err)"

# --- events --follow: prints a published event, exits 0 on SIGINT, leaves no subscription behind ---
"${C1[@]}" events --follow news >ev.out 2>ev.err &
FPID=$!; PIDS+=("$FPID")
wait_for ev.err "following events on news" 30 $FPID || fail "events --follow did not start: $(cat ev.err)"
seen=0
for n in 1 2 3 4 5 6; do  # a publish can race the subscription's spread: publish again, bounded
  "${C0[@]}" publish news "{\"n\":$n}" >/dev/null 2>&1
  if wait_for ev.out '^\{"n":[0-9]\}$' 10 $FPID; then seen=1; break; fi
done
[ $seen -eq 1 ] || fail "events --follow printed no event: [$(cat ev.out)] $(cat ev.err)"
kill -INT $FPID
wait $FPID; rc=$?
[ $rc -eq 0 ] || fail "events --follow exit $rc after SIGINT"
[ -z "$("${C1[@]}" subscriptions 2>/dev/null)" ] || fail "events --follow left its subscription"

# --- messages --follow: prints a sent message ---
"${C1[@]}" messages --follow >msg.out 2>msg.err &
FPID=$!; PIDS+=("$FPID")
wait_for msg.err "following messages" 30 $FPID || fail "messages --follow did not start: $(cat msg.err)"
"${C0[@]}" send "$ID1" '{"hi":2}' >/dev/null 2>&1 || fail "send"
wait_for msg.out "^$ID0: \{\"hi\":2\}$" 30 $FPID || fail "messages --follow printed: [$(cat msg.out)]"
kill -INT $FPID
wait $FPID; rc=$?
[ $rc -eq 0 ] || fail "messages --follow exit $rc after SIGINT"

kill -TERM $DPID
wait $DPID; rc=$?
[ $rc -eq 0 ] || fail "storjnetd exit code after SIGTERM: $rc"

if [ $FAILS -ne 0 ]; then echo "$FAILS check(s) failed" >&2; exit 1; fi
echo "CLI files and follow: all checks passed"
