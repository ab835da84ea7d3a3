#!/usr/bin/env bash
# The Debian package of the build under test (packaging/CMakeLists.txt): cpack builds it into a temp dir; the
# test checks its file list (dpkg-deb -c), control fields and maintainer files (dpkg-deb -I), that the
# packaged storjnetd runs with the packaged config (a real start on ephemeral ports, cookie mode 0640,
# clean stop), and that lintian finds no error (its warnings are printed).
# Usage: deb_test.sh BUILD_DIR VERSION
set -uo pipefail
BUILD=$1
VERSION=$2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/storjnet-deb-test.XXXXXX")
DPID=""
cleanup() {
  if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then kill -KILL "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
FAILS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }

if ! cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$WORK/out" >"$WORK/cpack.log" 2>&1; then
  cat "$WORK/cpack.log" >&2
  echo "FAIL: cpack" >&2
  exit 1
fi
DEB=$WORK/out/storjnet_${VERSION}_amd64.deb
[ -f "$DEB" ] || { ls -l "$WORK/out" >&2; echo "FAIL: no $DEB" >&2; exit 1; }

# --- contents: exactly these files (directories aside), all owned by root ---
dpkg-deb -c "$DEB" >"$WORK/contents" || fail "dpkg-deb -c"
awk '$1 !~ /^d/ {print $6}' "$WORK/contents" | sort >"$WORK/files"
cat >"$WORK/want" <<WANT
./etc/storjnet/storjnetd.toml
./lib/systemd/system/storjnetd.service
./usr/bin/storjnet
./usr/bin/storjnetd
./usr/share/doc/storjnet/changelog.gz
./usr/share/doc/storjnet/copyright
./usr/share/man/man1/storjnet.1.gz
./usr/share/man/man8/storjnetd.8.gz
WANT
diff -u "$WORK/want" "$WORK/files" >&2 || fail "package files differ from the expected list (above)"
awk '$2 != "root/root" {print}' "$WORK/contents" | grep . >&2 && fail "files not owned by root/root (above)"
grep -E '^-rwxr-xr-x .* \./usr/bin/storjnetd$' "$WORK/contents" >/dev/null || fail "storjnetd is not mode 0755"

# --- control fields and maintainer files ---
dpkg-deb -I "$DEB" >"$WORK/info" || fail "dpkg-deb -I"
field() { dpkg-deb -f "$DEB" "$1"; }
[ "$(field Package)" = storjnet ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$VERSION" ] || fail "Version: $(field Version), wanted $VERSION"
[ "$(field Architecture)" = amd64 ] || fail "Architecture: $(field Architecture)"
[ "$(field Section)" = net ] || fail "Section: $(field Section)"
for dep in adduser libsodium23 libsqlite3-0 libc6; do
  field Depends | grep -qw "$dep" || fail "Depends lacks $dep: $(field Depends)"
done
for f in conffiles postinst prerm postrm md5sums; do
  grep -qw "$f" "$WORK/info" || fail "no $f in the control archive"
done
mkdir -p "$WORK/control" && dpkg-deb -e "$DEB" "$WORK/control"
[ "$(cat "$WORK/control/conffiles")" = /etc/storjnet/storjnetd.toml ] || fail "conffiles: $(cat "$WORK/control/conffiles")"
grep -q 'adduser --system' "$WORK/control/postinst" || fail "postinst does not create the system user"

# --- the packaged files work together ---
dpkg-deb -x "$DEB" "$WORK/root" || fail "dpkg-deb -x"
ROOT=$WORK/root
[ "$("$ROOT/usr/bin/storjnetd" --version)" = "storjnetd $VERSION (protocol 4)" ] ||
  fail "storjnetd --version: $("$ROOT/usr/bin/storjnetd" --version 2>&1)"
[ "$("$ROOT/usr/bin/storjnet" --version)" = "storjnet $VERSION (protocol 4)" ] ||
  fail "storjnet --version: $("$ROOT/usr/bin/storjnet" --version 2>&1)"
UNIT=$ROOT/lib/systemd/system/storjnetd.service
grep -qx 'ExecStart=/usr/bin/storjnetd --config /etc/storjnet/storjnetd.toml' "$UNIT" || fail "unit ExecStart"
for line in User=storjnet StateDirectory=storjnet ProtectSystem=strict NoNewPrivileges=yes; do
  grep -qx "$line" "$UNIT" || fail "unit lacks $line"
done
# The man pages, "\-" read as "-".
zcat "$ROOT/usr/share/man/man8/storjnetd.8.gz" | sed 's/\\-/-/g' >"$WORK/storjnetd.8"
zcat "$ROOT/usr/share/man/man1/storjnet.1.gz" | sed 's/\\-/-/g' >"$WORK/storjnet.1"
grep -q "storjnet $VERSION" "$WORK/storjnetd.8" || fail "storjnetd.8 does not name the version"
# Every flag storjnetd --help lists is documented in storjnetd(8), every command of storjnet --help in storjnet(1).
"$ROOT/usr/bin/storjnetd" --help >"$WORK/storjnetd.help"
"$ROOT/usr/bin/storjnet" --help >"$WORK/storjnet.help"
for flag in $(grep -oE -- '--[a-z-]+' "$WORK/storjnetd.help" | sort -u); do
  grep -q -- "$flag" "$WORK/storjnetd.8" || fail "storjnetd.8 lacks $flag"
done
for flag in $(grep -oE -- '--[a-z-]+' "$WORK/storjnet.help" | sort -u); do
  grep -q -- "$flag" "$WORK/storjnet.1" || fail "storjnet.1 lacks $flag"
done
for cmd in $(awk '/^Subcommands:/ {s = 1; next} s && NF {print $1}' "$WORK/storjnet.help"); do
  grep -qE "^\.B[IR]? $cmd( |$)" "$WORK/storjnet.1" || fail "storjnet.1 lacks command $cmd"
done
# The packaged daemon with the packaged config (the service's settings; data dir and ports overridden).
"$ROOT/usr/bin/storjnetd" --config "$ROOT/etc/storjnet/storjnetd.toml" --data-dir "$WORK/data" --port 0 \
  --api-port 0 --host 127.0.0.1 >"$WORK/daemon.out" 2>"$WORK/daemon.err" &
DPID=$!
for _ in $(seq 1 1200); do  # up to 60 s for the "ready" line (a busy sanitizer build), or the daemon's exit
  grep -q "node ready" "$WORK/daemon.out" 2>/dev/null && break
  kill -0 $DPID 2>/dev/null || break
  sleep 0.05
done
if grep -q "node ready" "$WORK/daemon.out"; then
  [ "$(stat -c %a "$WORK/data/.cookie")" = 640 ] || fail "cookie mode $(stat -c %a "$WORK/data/.cookie"), wanted 640"
  kill -TERM $DPID
  wait $DPID; rc=$?; DPID=""
  [ $rc = 0 ] || fail "storjnetd exit $rc after SIGTERM"
else
  fail "storjnetd with the packaged config did not start: $(cat "$WORK/daemon.err")"
fi
# A key storjnetd does not know is refused (exit 2), not ignored.
printf 'data-dir = "%s"\nprot = 4000\n' "$WORK/data" >"$WORK/typo.toml"
"$ROOT/usr/bin/storjnetd" --config "$WORK/typo.toml" >/dev/null 2>"$WORK/typo.err"
rc=$?
[ $rc = 2 ] && grep -q prot "$WORK/typo.err" || fail "unknown config key: exit $rc, $(cat "$WORK/typo.err")"

# --- lintian: no errors; warnings are printed for the record ---
lintian --fail-on error --tag-display-limit 0 "$DEB" >"$WORK/lintian" 2>&1
rc=$?
grep -v '^running with root privileges' "$WORK/lintian"
[ $rc = 0 ] || fail "lintian exit $rc"

if [ $FAILS -gt 0 ]; then
  echo "$FAILS check(s) failed" >&2
  exit 1
fi
echo "deb_test: $DEB ok ($(stat -c %s "$DEB") bytes)"
