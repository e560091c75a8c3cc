#!/usr/bin/env bash
# TLS configuration check: testssl.sh (Debian package testssl.sh) against a
# tandem site with `tls internal;`, on 127.0.0.1 with a free port.
#
#   bash bench/testssl.sh                # a few minutes; report on stdout
#
# testssl checks protocols, cipher suites, forward secrecy, server
# preferences and known vulnerabilities (Heartbleed, ROBOT, CRIME, BREACH,
# POODLE, SWEET32, BEAST, LUCKY13, RC4, ...). Issue 5's target: no weak
# protocol, cipher or vulnerability. The certificate is tandem's own local
# CA, which testssl does not trust; its chain-of-trust finding is expected
# and is not about the TLS configuration. Exit status: testssl's.
#
# Knobs: TANDEM_BIN (use this binary instead of building one), KEEP=1 keeps
# the temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

TMP=$(mktemp -d)
TANDEM_PID=
cleanup() {
	[[ -n $TANDEM_PID ]] && kill "$TANDEM_PID" 2>/dev/null && wait "$TANDEM_PID" 2>/dev/null
	[[ ${KEEP:-0} == 1 ]] || rm -rf "$TMP"
}
trap cleanup EXIT

if ! command -v testssl >/dev/null; then
	if [[ $(id -u) == 0 ]]; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends testssl.sh >/dev/null
	else
		echo "testssl.sh is not installed (apt-get install testssl.sh)" >&2
		exit 2
	fi
fi

BIN=${TANDEM_BIN:-}
if [[ -z $BIN ]]; then
	BIN=$TMP/tandem
	go build -o "$BIN" ./cmd/tandem
fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$TMP/www"
echo "hello" >"$TMP/www/index.html"
cat >"$TMP/tandem.conf" <<CONF
tls_storage $TMP/tls;
site localhost {
    listen 127.0.0.1:$PORT;
    tls internal;
    hsts 180d;
    root $TMP/www;
}
CONF
"$BIN" run -c "$TMP/tandem.conf" --pid "$TMP/tandem.pid" >"$TMP/tandem.log" 2>&1 &
TANDEM_PID=$!
for _ in $(seq 1 100); do
	curl -sk -o /dev/null "https://localhost:$PORT/" --resolve "localhost:$PORT:127.0.0.1" && break
	sleep 0.1
done

echo "### testssl.sh against tandem \`tls internal\`"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC') · testssl.sh $(dpkg-query -W -f='${Version}' testssl.sh 2>/dev/null || echo '?') · $("$BIN" version 2>/dev/null | head -1)"
echo
echo '```'
# --ip one: the name resolves to 127.0.0.1 only; --warnings batch: no prompts.
status=0
testssl --quiet --color 0 --warnings batch --ip one --sneaky \
	--protocols --std --fs --server-preference --vulnerable \
	"localhost:$PORT" || status=$?
echo '```'
exit "$status"
