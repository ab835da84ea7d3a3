#!/usr/bin/env bash
# End-to-end test of the storjnet CLI against a storjnetd with a few nodes. The daemon runs with its default
# authentication (a random token in DATA_DIR/.cookie) and the CLI, run from the same directory, finds it
# with no flag (storjnet-data/.cookie).
# Usage: api_cli_test.sh STORJNETD STORJNET_CLI
set -uo pipefail
DAEMON=$1
CLI=$2
NODES=5
WORK=$(mktemp -d "${TMPDIR:-/tmp}/storjnet-cli-test.XXXXXX")
DPID=""
cleanup() {
  if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then kill -KILL "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 1
FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
# expect DESCRIPTION WANTED_OUTPUT -- command...
expect() {
  local what=$1 want=$2; shift 3
  local got
  got=$("$@" 2>"$WORK/err")
  local rc=$?
  if [ "$got" != "$want" ]; then fail "$what: got [$got] (rc=$rc, stderr: $(cat "$WORK/err")), wanted [$want]"; fi
}
expect_rc() {
  local what=$1 want=$2; shift 3
  "$@" >"$WORK/out" 2>"$WORK/err"
  local rc=$?
  if [ "$rc" != "$want" ]; then fail "$what: exit $rc, wanted $want (stdout: $(cat "$WORK/out"), stderr: $(cat "$WORK/err"))"; fi
}

# Start on pid-derived ports; another base after a collision (exit 2).
for attempt in 0 1 2 3 4; do
  BASE=$(( 21000 + ( ($$ * 7919 + attempt * 104729) % 380 ) * 100 ))
  "$DAEMON" --nodes $NODES --port $BASE --api-port $((BASE + 50)) --host 127.0.0.1 --data-dir storjnet-data \
    --log-level warn >"$WORK/daemon.out" 2>"$WORK/daemon.err" &
  DPID=$!
  # Wait (with a deadline) for the "ready" line, or for the daemon to exit.
  for _ in $(seq 1 1200); do
    grep -q "nodes ready" "$WORK/daemon.out" 2>/dev/null && break
    kill -0 $DPID 2>/dev/null || break
    sleep 0.05
  done
  grep -q "nodes ready" "$WORK/daemon.out" && break
  wait $DPID; rc=$?; DPID=""
  [ $rc -eq 2 ] || { echo "storjnetd failed (exit $rc): $(cat "$WORK/daemon.err")" >&2; exit 1; }
done
grep -q "nodes ready" "$WORK/daemon.out" || { echo "storjnetd did not start" >&2; exit 1; }
[ "$(grep -c '^node ' "$WORK/daemon.out")" = $NODES ] || fail "one line per node"

api() { echo "http://127.0.0.1:$((BASE + 50 + $1))"; }
id_of() { sed -n "s/^node $1 id=\([0-9a-f]*\) .*/\1/p" "$WORK/daemon.out"; }
C0=("$CLI" --api "$(api 0)")
C1=("$CLI" --api "$(api 1)")
C3=("$CLI" --api "$(api 3)")
ID0=$(id_of 0); ID3=$(id_of 3)

COOKIE=storjnet-data/.cookie
[ -f "$COOKIE" ] || fail "no cookie file"
[ "$(stat -c %a "$COOKIE")" = 600 ] || fail "cookie mode $(stat -c %a "$COOKIE"), wanted 600"
[ "$(head -c 64 "$COOKIE" | tr -d 0-9a-f | wc -c)" = 0 ] && [ "$(head -n 1 "$COOKIE" | wc -c)" = 65 ] \
  || fail "cookie is not 64 hex characters"
grep -q "API token in storjnet-data/.cookie" "$WORK/daemon.out" || fail "daemon does not say where the cookie is"
# Without the cookie (another directory) or with a wrong token: unauthorized, exit 2.
expect_rc "no token" 2 -- env -C / "$CLI" --api "http://127.0.0.1:$((BASE + 50))" id
grep -q unauthorized "$WORK/err" || fail "no-token message: $(cat "$WORK/err")"
expect_rc "wrong token" 2 -- "$CLI" --api "http://127.0.0.1:$((BASE + 50))" --token nope id
# The token from a file, from the environment, and from --data-dir.
cp "$COOKIE" token.txt
expect_rc "--token-file" 0 -- env -C / "$CLI" --api "http://127.0.0.1:$((BASE + 50))" --token-file "$WORK/token.txt" id
expect_rc "STORJNET_API_TOKEN" 0 -- env -C / STORJNET_API_TOKEN="$(cat token.txt)" "$CLI" --api "http://127.0.0.1:$((BASE + 50))" id
expect_rc "--data-dir" 0 -- env -C / "$CLI" --api "http://127.0.0.1:$((BASE + 50))" --data-dir "$WORK/storjnet-data" id

expect "id" "$ID0" -- "${C0[@]}" id
expect "id --json" "\"$ID3\"" -- "${C3[@]}" --json id
expect "call dht_id" "$ID3" -- "${C3[@]}" call dht_id
STORJNET_API=$(api 3) expect "STORJNET_API" "$ID3" -- "$CLI" id
"${C0[@]}" peers >"$WORK/peers" 2>/dev/null || fail "peers"
grep -Eq '^[0-9a-f]{40} 127\.0\.0\.1:[0-9]+$' "$WORK/peers" || fail "peers output: $(cat "$WORK/peers")"
expect "stun" "127.0.0.1:$((BASE + 1))" -- "${C1[@]}" stun
expect "find" "127.0.0.1:$((BASE + 3))" -- "${C0[@]}" find "$ID3"
expect "put" "stored" -- "${C0[@]}" put greeting hello
expect "get" "hello" -- "${C3[@]}" get greeting
expect "get --json" '"hello"' -- "${C3[@]}" --json get greeting
expect "get --owner" "hello" -- "${C3[@]}" get greeting --owner "$ID0"
expect "get --owner other" "(not found)" -- "${C3[@]}" get greeting --owner "$ID3"
expect "put json" "stored" -- "${C1[@]}" put obj '{"a":[1,2]}'
expect "get json" '{"a":[1,2]}' -- "${C0[@]}" get obj
expect "call dht_get" '{
  "a": [
    1,
    2
  ]
}' -- "${C0[@]}" call dht_get '"obj"'
expect_rc "get missing" 1 -- "${C0[@]}" get missing-key
expect "get missing output" "(not found)" -- "${C0[@]}" get missing-key
expect "call batch-free named" "true" -- "${C0[@]}" --json call dht_put k2 7
expect "send" "delivered" -- "${C0[@]}" send "$ID3" '{"hi":1}'
expect "messages" "$ID0: {\"hi\":1}" -- "${C3[@]}" messages
expect "messages empty" "{}" -- "${C3[@]}" --json messages
expect "subscribe" "subscribed" -- "${C3[@]}" subscribe news
expect "subscriptions" "news" -- "${C3[@]}" subscriptions
expect "publish" "published" -- "${C1[@]}" publish news '{"n":1}'
EVENTS=""
for _ in $(seq 1 200); do
  EVENTS+=$("${C3[@]}" events news 2>/dev/null)
  [ -n "$EVENTS" ] && break
  sleep 0.05
done
[ "$EVENTS" = '{"n":1}' ] || fail "events: [$EVENTS]"
expect "unsubscribe" "unsubscribed" -- "${C3[@]}" unsubscribe news
SID=$("${C0[@]}" open "$ID3" 2>"$WORK/err")
if [[ "$SID" =~ ^[0-9a-f]{64}$ ]]; then
  expect "write" "3 bytes written" -- "${C0[@]}" write "$SID" 616263
  DATA=""
  for _ in $(seq 1 200); do
    DATA+=$("${C3[@]}" read "$SID" 2>/dev/null)
    [ ${#DATA} -ge 6 ] && break
    sleep 0.05
  done
  [ "$DATA" = "616263" ] || fail "read: [$DATA]"
  "${C0[@]}" streams | grep -q "^$SID peer=$ID3 unread=0$" || fail "streams: $("${C0[@]}" streams 2>&1)"
  expect "close" "closed" -- "${C0[@]}" close "$SID"
  expect_rc "close again" 1 -- "${C0[@]}" close "$SID"
else
  fail "open: [$SID] $(cat "$WORK/err")"
fi
# Errors: exit 1 with the JSON-RPC error on stderr; usage and connection problems exit 2.
expect_rc "unknown method" 1 -- "${C0[@]}" call no_such_method
grep -q "error -32601" "$WORK/err" || fail "unknown method message: $(cat "$WORK/err")"
expect_rc "bad id" 1 -- "${C0[@]}" find xyz
grep -q "error -32602" "$WORK/err" || fail "bad id message: $(cat "$WORK/err")"
expect_rc "bad usage" 2 -- "${C0[@]}" put onlykey
expect_rc "bad url" 2 -- "$CLI" --api "ftp://x" id
expect_rc "unknown command" 2 -- "${C0[@]}" frobnicate 42
grep -q 'unknown command "frobnicate"' "$WORK/err" || fail "unknown command message: $(cat "$WORK/err")"
expect_rc "no command" 2 -- "${C0[@]}"
VERSION_RE='^[0-9]+\.[0-9]+\.[0-9]+ \(protocol [0-9]+\)$'
expect_rc "storjnet --version" 0 -- "$CLI" --version
sed 's/^storjnet //' "$WORK/out" | grep -Eq "$VERSION_RE" || fail "storjnet --version: $(cat "$WORK/out")"
expect_rc "storjnetd --version" 0 -- "$DAEMON" --version
sed 's/^storjnetd //' "$WORK/out" | grep -Eq "$VERSION_RE" || fail "storjnetd --version: $(cat "$WORK/out")"
expect_rc "nobody listening" 2 -- "$CLI" --api "http://127.0.0.1:1" id
expect_rc "health" 0 -- "${C0[@]}" health
grep -q '"status":"ok"' "$WORK/out" || fail "health output: $(cat "$WORK/out")"
expect_rc "metrics" 0 -- "${C0[@]}" metrics
grep -q '^storjnet_api_calls_total{method="dht_put"} ' "$WORK/out" || fail "metrics output"

# Clean stop on SIGTERM.
kill -TERM $DPID
wait $DPID; rc=$?; DPID=""
[ $rc -eq 0 ] || fail "storjnetd exit code after SIGTERM: $rc"
tail -n 1 "$WORK/daemon.out" | grep -q "storjnetd: stopped" || fail "no stopped line"
[ -e "$COOKIE" ] && fail "cookie left behind after a clean stop"

if [ $FAILS -ne 0 ]; then echo "$FAILS check(s) failed" >&2; exit 1; fi
echo "CLI end-to-end: all checks passed"
