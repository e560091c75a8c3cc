#!/usr/bin/env bash
# TLS benchmark: tandem vs nginx vs a bare Go HTTPS handler.
#
#   bash bench/tls.sh                          # defaults: DURATION=5 ROUNDS=3
#   DURATION=3 ROUNDS=1 bash bench/tls.sh      # a smoke run (about a minute)
#
# One ECDSA P-256 certificate (made with openssl in the temp dir, for
# "localhost" and 127.0.0.1) serves all three servers:
#   tandem  `site localhost { listen 127.0.0.1:PORT default; tls CERT KEY;
#           root DOCROOT; }` with access_log off — the config a user writes
#   nginx   worker_processes = cores, `listen … ssl http2` (or `http2 on;`
#           where the nginx is new enough), ssl_session_cache
#           shared:SSL:10m, sendfile, open_file_cache, access_log off
#   bare    bench/barehandler -tls-cert/-tls-key: net/http's
#           ListenAndServeTLS writing a fixed 1 KiB body (Go's own TLS and
#           HTTP/2 server, nothing else)
# and two things are measured, the servers alternating within each round
# (the first one rotates from round to round):
#   h2  HTTPS + HTTP/2 requests per second and p99 latency for a 1 KiB file:
#       h2load -cCONNS -mSTREAMS -tTHREADS -DDURATION (ALPN h2, SNI
#       localhost), p99 from h2load's per-request log. Ratios: tandem / bare
#       (issue 5's target: ≥ 0.9) and tandem / nginx.
#   hs  new TLS connections per second: bench/tlshandshake -c HS_CONNS —
#       connect, full TLS 1.3 handshake (no resumption, key exchange
#       HS_GROUPS), GET /1k.bin with Connection: close, read the status
#       line, close. Ratio tandem / nginx (target: ≥ 0.9). With "resume" in
#       HS_MODES the same again with session resumption.
#
# Every server must first answer /1k.bin over HTTP/2 with 200 and the right
# 1024 bytes. Runs are noise-controlled as in bench/app.sh (wait for an idle
# machine; repeat a run in which other processes took more than NOISE_MAX %
# of the CPU). Also reported: each server's CPU time per request or per
# handshake (the client shares the machine, so this is the fairer view of
# server cost).
#
# When tandem does not build, or `tandem check` rejects the TLS config (a
# build without TLS), tandem is skipped with a message and nginx and bare
# are still measured. Everything runs on 127.0.0.1 with free ports in a
# throwaway directory, killed and removed on exit (KEEP=1 keeps it).
# Markdown goes to stdout, progress to stderr: `bash bench/tls.sh > tls.md`.
#
# Knobs (environment):
#   DURATION   seconds per run (default 5; DUR accepted too)
#   ROUNDS     rounds; every server runs every test once per round (default 3)
#   CONNS      h2load clients (connections)                    (default 32)
#   STREAMS    h2load max concurrent streams per connection    (default 10)
#   THREADS    h2load threads                                  (default 2)
#   HS_CONNS   tlshandshake concurrent connections             (default 32)
#   TESTS      which tests: "h2", "hs" or "h2 hs"               (default both)
#   HS_MODES   "full", "resume" or "full resume"               (default both)
#   HS_GROUPS  key exchange group(s) offered by tlshandshake   (default x25519:
#              what both servers then do; Go would otherwise pick
#              X25519MLKEM768, which OpenSSL 3.0 cannot)
#   NOISE_MAX, NOISE_BUDGET  as bench/app.sh (10 %, 120 s)
#   NO_TANDEM  set to 1 to benchmark only nginx and bare
#   TANDEM_BIN use this tandem binary instead of building ./cmd/tandem
#   KEEP       set to 1 to keep the temp dir (configs, logs, every output)
set -euo pipefail

DUR=${DURATION:-${DUR:-5}}
DUR=${DUR%s}
[[ $DUR =~ ^[0-9]+$ ]] || { echo "tls.sh: DURATION must be whole seconds, got '$DUR'" >&2; exit 2; }
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
STREAMS=${STREAMS:-10}
THREADS=${THREADS:-2}
HS_CONNS=${HS_CONNS:-32}
HS_MODES=${HS_MODES-full resume}
TESTS=${TESTS:-h2 hs}
[[ " $TESTS " == *" hs "* ]] || HS_MODES=""
RUN_H2=0
[[ " $TESTS " == *" h2 "* ]] && RUN_H2=1
HS_GROUPS=${HS_GROUPS:-x25519}
NO_TANDEM=${NO_TANDEM:-0}

# app.sh brings the noise-controlled measurement helpers (wait_quiet,
# busy_ticks, our_ticks, child_ticks, tree_pids, proc_ticks), wait_200 and
# median/ratio/fmt; sourcing it does not run its benchmark. It sources
# lib.sh (bench_init, free_port, start_bg, apt_install, ensure_tools,
# build_tandem).
# shellcheck source=bench/app.sh
. "$(dirname "${BASH_SOURCE[0]}")/app.sh"

# ---------------------------------------------------------------- setup

# make_cert: one self-signed ECDSA P-256 certificate for localhost and
# 127.0.0.1, used by every server and trusted by the clients.
make_cert() {
	CERT=$TMP/tls/cert.pem
	KEY=$TMP/tls/key.pem
	mkdir -p "$TMP/tls"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$KEY" -out "$CERT" -days 7 -subj /CN=localhost \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" >"$TMP/tls/openssl.log" 2>&1 ||
		{ cat "$TMP/tls/openssl.log" >&2; die "openssl could not make the certificate"; }
	# nginx workers may run as another user; the key is a throwaway.
	chmod 644 "$KEY" "$CERT"
}

# nginx_http2_syntax: "on" when this nginx takes `http2 on;` (1.25.1+),
# else "listen" (`listen … ssl http2;`, e.g. Debian 12's 1.22).
nginx_http2_syntax() {
	mkdir -p "$TMP/nginx-probe"
	cat >"$TMP/nginx-probe/nginx.conf" <<EOF
pid $TMP/nginx-probe/nginx.pid;
error_log $TMP/nginx-probe/error.log;
events {}
http { server { listen 127.0.0.1:1 ssl; http2 on; ssl_certificate $CERT; ssl_certificate_key $KEY; } }
EOF
	if "$NGINX" -t -q -p "$TMP/nginx-probe" -c "$TMP/nginx-probe/nginx.conf" >/dev/null 2>&1; then
		echo on
	else
		echo listen
	fi
}

# start_nginx_tls PORT: nginx tuned as bench/static.sh's, plus TLS the way
# a production site sets it up. Sets NGINX_PID.
start_nginx_tls() {
	local port=$1 listen http2=""
	if [[ $(nginx_http2_syntax) == on ]]; then
		listen="listen 127.0.0.1:$port ssl default_server;"
		http2="http2 on;"
	else
		listen="listen 127.0.0.1:$port ssl http2 default_server;"
	fi
	{
		nginx_head nginx
		nginx_static
		cat <<EOF
	ssl_protocols TLSv1.2 TLSv1.3;
	ssl_session_cache shared:SSL:10m;
	ssl_session_timeout 1h;
	server {
		$listen
		$http2
		server_name localhost;
		ssl_certificate $CERT;
		ssl_certificate_key $KEY;
		root $DOCROOT;
	}
}
EOF
	} >"$TMP/nginx.conf"
	start_bg "$TMP/nginx.out" "$NGINX" -p "$TMP" -c "$TMP/nginx.conf"
	NGINX_PID=$LAST_PID
	# shellcheck disable=SC2046
	wait_200 nginx "$NGINX_PID" "$TMP/nginx-error.log" $(curl_tls_args "$port") "https://localhost:$port/1k.bin"
}

tandem_conf() {
	local port=$1
	cat <<EOF
pid_file $TMP/tandem.pid;
access_log off;
site localhost {
	listen 127.0.0.1:$port default;
	tls $CERT $KEY;
	root $DOCROOT;
}
EOF
}

# tandem_usable: tandem builds and accepts the TLS config; otherwise says why
# in TANDEM_SKIP.
TANDEM_SKIP=""
tandem_usable() {
	if [[ $NO_TANDEM == 1 ]]; then
		TANDEM_SKIP="NO_TANDEM=1"
		return 1
	fi
	if ! build_tandem; then
		TANDEM_SKIP="tandem does not build (./cmd/tandem; see the compiler output above)"
		return 1
	fi
	tandem_conf 1 >"$TMP/tandem-check.conf"
	if ! "$TMP/tandem" check -c "$TMP/tandem-check.conf" >"$TMP/tandem-check.out" 2>&1; then
		sed 's/^/    /' "$TMP/tandem-check.out" >&2
		TANDEM_SKIP="\`tandem check\` rejects the TLS site config (\`tls CERT KEY;\`): $(head -n 1 "$TMP/tandem-check.out" | sed "s|$TMP/||")"
		return 1
	fi
}

start_tandem_tls() {
	local port=$1
	tandem_conf "$port" >"$TMP/tandem.conf"
	start_bg "$TMP/tandem.log" "$TMP/tandem" run -c "$TMP/tandem.conf"
	TANDEM_PID=$LAST_PID
	# shellcheck disable=SC2046
	wait_200 tandem "$TANDEM_PID" "$TMP/tandem.log" $(curl_tls_args "$port") "https://localhost:$port/1k.bin"
}

start_bare_tls() {
	local port=$1
	start_bg "$TMP/bare.log" "$TMP/barehandler" -listen "127.0.0.1:$port" -size 1024 \
		-tls-cert "$CERT" -tls-key "$KEY"
	BARE_PID=$LAST_PID
	# shellcheck disable=SC2046
	wait_200 bare "$BARE_PID" "$TMP/bare.log" $(curl_tls_args "$port") "https://localhost:$port/1k.bin"
}

# curl_tls_args PORT: verify against our certificate, name "localhost"
# (SNI and Host), connect to 127.0.0.1 whatever localhost resolves to.
curl_tls_args() {
	echo "--cacert $CERT --connect-to localhost:$1:127.0.0.1:$1"
}

# check_h2 NAME PORT: 200, HTTP/2, 1024 bytes; for the file servers the
# very bytes of 1k.bin.
check_h2() {
	local name=$1 port=$2 out=$TMP/check.body got
	# shellcheck disable=SC2046
	got=$(curl -s --http2 $(curl_tls_args "$port") -o "$out" \
		-w '%{http_code} %{http_version} %{size_download}' "https://localhost:$port/1k.bin")
	[[ $got == "200 2 1024" ]] || die "$name: GET /1k.bin over TLS gave 'status version size' = '$got', want '200 2 1024'"
	if [[ $name != bare ]]; then
		cmp -s "$out" "$DOCROOT/1k.bin" || die "$name: /1k.bin body differs from the file"
	fi
	rm -f "$out"
}

# ---------------------------------------------------------------- runs

# tls_ticks: for measured_run, everything counted as ours (the trees in
# ROOTS and ksoftirqd), then SERVER_ROOT's process tree.
tls_ticks() {
	local spids
	mapfile -t spids < <(tree_pids "$SERVER_ROOT")
	echo "$(our_ticks "${ROOTS[@]}") $(proc_ticks "${spids[@]}")"
}

# measure LABEL OUT CMD...: run CMD (output to OUT) with lib.sh's noise
# accounting for the servers in ROOTS; CPU of SERVER_ROOT's process tree
# during the run goes to SERVER_TICKS. Sets FOREIGN (%).
measure() {
	measured_run "$1" "$2" run tls_ticks "${@:3}"
	FOREIGN=$RUN_FOREIGN SERVER_TICKS=${RUN_TICKS[1]}
}

# us_per N: the server's CPU microseconds per unit of work (N units).
us_per() {
	awk -v t="$SERVER_TICKS" -v n="$1" -v hz="$HZ" 'BEGIN { printf "%.1f", n ? t / hz * 1e6 / n : 0 }'
}

# run_h2 SERVER ROUND DURATION: one h2load run. Appends a row to RESULTS
# (test server round value p99_ms foreign% cpu_us) unless ROUND is warm.
run_h2() {
	local s=$1 round=$2 dur=$3 port=${PORT[$1]}
	local out=$TMP/h2load-$s-$round.txt reqlog=$TMP/h2load-$s-$round.log
	SERVER_ROOT=${ROOT[$s]}
	measure "round $round h2/$s" "$out" h2load -c "$CONNS" -m "$STREAMS" -t "$THREADS" -D "$dur" \
		--log-file="$reqlog" --connect-to="127.0.0.1:$port" "https://localhost:$port/1k.bin"
	grep -q '^Application protocol: h2$' "$out" || { cat "$out" >&2; die "h2/$s: h2load did not negotiate h2"; }
	local rps ndone failed errored timeout non2xx p99
	rps=$(awk '/^finished in/ {print $4}' "$out")
	# "requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout"
	read -r ndone failed errored timeout < <(awk '/^requests:/ {print $8, $10, $12, $14}' "$out")
	non2xx=$(awk '/^status codes:/ {print $5 + $7 + $9}' "$out")
	[[ -n $rps && -n $ndone ]] || { cat "$out" >&2; die "cannot parse h2load output for $s"; }
	if ((failed + errored + timeout + non2xx)); then
		sed -n '/^finished/,/^status codes/p' "$out" >&2
		die "h2/$s round $round: $failed failed, $errored errored, $timeout timed out, $non2xx non-2xx of $ndone"
	fi
	# h2load logs "start µs, status, duration µs" per request.
	p99=$(awk -F'\t' '{print $3}' "$reqlog" | sort -n | awk '{v[NR] = $1} END {
		if (!NR) { print "-"; exit } i = int(NR * 0.99 + 0.5); if (i < 1) i = 1; printf "%.3f", v[i] / 1000 }')
	rm -f "$reqlog"
	[[ $round == warm ]] && return
	local cpu
	cpu=$(us_per "$ndone")
	printf 'h2\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$round" "$rps" "$p99" "$FOREIGN" "$cpu" >>"$RESULTS"
	log "$(printf 'round %s  h2 %-7s %10s req/s  p99 %8s ms  server CPU %6s us/req  other CPU %5s%%' \
		"$round" "$s" "$rps" "$p99" "$cpu" "$FOREIGN")"
}

# kv KEY LINE: the value of KEY in tlshandshake's "result k=v ..." line.
kv() {
	local re=" $1=([^ ]*)"
	[[ $2 =~ $re ]] && echo "${BASH_REMATCH[1]}"
}

# run_hs MODE SERVER ROUND DURATION: one tlshandshake run (MODE full or
# resume).
run_hs() {
	local mode=$1 s=$2 round=$3 dur=$4 port=${PORT[$2]} extra=()
	local out=$TMP/hs-$mode-$s-$round.txt
	[[ $mode == resume ]] && extra=(-resume)
	SERVER_ROOT=${ROOT[$s]}
	measure "round $round hs-$mode/$s" "$out" "$TMP/tlshandshake" -addr "127.0.0.1:$port" \
		-ca "$CERT" -servername localhost -c "$HS_CONNS" -d "${dur}s" -groups "$HS_GROUPS" \
		-path /1k.bin "${extra[@]}"
	local line rate ok resumed errors p99
	line=$(grep '^result ' "$out") || { cat "$out" >&2; die "cannot parse tlshandshake output for $s"; }
	rate=$(kv hs_per_s "$line") ok=$(kv ok "$line") resumed=$(kv resumed "$line")
	errors=$(kv errors "$line") p99=$(kv p99_ms "$line")
	if ((errors * 100 > ok)); then
		cat "$out" >&2
		die "hs-$mode/$s round $round: $errors errors for $ok connections"
	elif ((errors)); then
		log "warning: hs-$mode/$s round $round: $errors errors: $(grep '  error' "$out" | tr -s ' ' | head -n 3 | tr '\n' ';')"
		echo "hs-$mode/$s round $round: $errors errors of $((ok + errors)): $(grep '  error' "$out" | tr -s ' ' | tr '\n' ';')" >>"$TMP/hs-errors"
	fi
	if [[ $mode == resume ]] && ((resumed * 10 < ok * 9)); then
		log "warning: hs-resume/$s round $round: only $resumed of $ok connections resumed"
		echo "hs-resume/$s round $round: only $resumed of $ok connections resumed" >>"$TMP/hs-errors"
	fi
	[[ $round == warm ]] && return
	local cpu
	cpu=$(us_per "$ok")
	printf 'hs-%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$s" "$round" "$rate" "$p99" "$FOREIGN" "$cpu" >>"$RESULTS"
	log "$(printf 'round %s  hs-%-6s %-7s %9s conn/s  p99 %8s ms  server CPU %6s us/conn  other CPU %5s%%' \
		"$round" "$mode" "$s" "$rate" "$p99" "$cpu" "$FOREIGN")"
}

# ---------------------------------------------------------------- report

# Runs in which other processes still took more than NOISE_MAX % of the
# CPU (the repeats and the budget ran out) are left out of the medians, as
# in bench/static.sh: that CPU was missing for one server only. A test and
# server without any clean run keeps all its runs (flagged with * in "runs
# used").
used_rows() {
	awk -F'\t' -v t="$1" -v s="$2" -v m="$NOISE_MAX" '$1 == t && $2 == s { row[++n] = $0; clean[n] = ($6 <= m); c += clean[n] }
		END { for (i = 1; i <= n; i++) if (clean[i] || !c) print row[i] }' "$RESULTS"
}
runs_used() {
	awk -F'\t' -v t="$1" -v s="$2" -v m="$NOISE_MAX" '$1 == t && $2 == s { n++; if ($6 <= m) c++ }
		END { if (c) printf "%d/%d", c, n; else printf "%d/%d*", n, n }' "$RESULTS"
}
# med TEST SERVER COLUMN (4 value, 5 p99, 7 CPU µs): median over the used runs.
med() {
	used_rows "$1" "$2" | awk -F'\t' -v c="$3" '{print $c}' | sort -g |
		awk '{v[NR] = $1} END { if (NR == 0) { print "-"; exit }
			if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
rng() {
	used_rows "$1" "$2" | awk -F'\t' '{ if (n++ == 0 || $4 < lo) lo = $4; if ($4 > hi) hi = $4 }
		END { if (n) printf "%.0f–%.0f", lo, hi; else print "-" }'
}

report() {
	local cpu nginx_v h2load_v ossl_v noise s t
	cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
	nginx_v=$({ "$NGINX" -v 2>&1 || true; } | sed 's/^nginx version: //')
	h2load_v=$(h2load --version 2>&1 | awk '{print $2}')
	ossl_v=$(openssl version | awk '{print $1, $2}')
	noise=$(noise_summary 6)

	cat <<EOF
### TLS: tandem vs nginx vs a bare Go handler

$(date -u '+%Y-%m-%d %H:%M UTC') · $(nproc) CPUs (${cpu}) · $(go version | awk '{print $3}') · ${nginx_v} (${NGINX_LIBSSL}) · h2load ${h2load_v} · ${ossl_v} · load average before: ${LOAD_BEFORE}

\`TESTS="$TESTS" DURATION=$DUR ROUNDS=$ROUNDS CONNS=$CONNS STREAMS=$STREAMS THREADS=$THREADS HS_CONNS=$HS_CONNS HS_MODES="$HS_MODES" HS_GROUPS=$HS_GROUPS bash bench/tls.sh\` — one ECDSA P-256 certificate for all servers; medians of $ROUNDS rounds (servers alternate, the first rotates each round).
CPU used by other processes during the runs: $noise of the machine; runs repeated for exceeding ${NOISE_MAX}%: ${REPEATED}. Medians and ranges are over the runs under ${NOISE_MAX}% ("runs used"; * = none was, all kept).
EOF
	if [[ -n $TANDEM_SKIP ]]; then
		printf '\n**tandem skipped**: %s\n' "$TANDEM_SKIP"
	fi
	((RUN_H2)) && cat <<EOF

HTTPS + HTTP/2, 1 KiB file: \`h2load -c$CONNS -m$STREAMS -t$THREADS -D$DUR\`, p99 from h2load's per-request log.

| server | req/s (median) | req/s range | p99 | server CPU / request | runs used |
|---|--:|--:|--:|--:|--:|
EOF
	((RUN_H2)) && for s in "${SERVERS[@]}"; do
		printf '| %s | %s | %s | %s ms | %s µs | %s |\n' "$s" "$(fmt "$(med h2 "$s" 4)" 0)" "$(rng h2 "$s")" \
			"$(fmt "$(med h2 "$s" 5)" 2)" "$(fmt "$(med h2 "$s" 7)" 1)" "$(runs_used h2 "$s")"
	done
	local mode
	for mode in $HS_MODES; do
		t=hs-$mode
		if [[ $mode == full ]]; then
			# shellcheck disable=SC2016
			printf '\nNew connections, full TLS 1.3 handshake (no resumption, %s): `tlshandshake -c %s -d %ss`; p99 of TCP connect + handshake.\n' "$HS_GROUPS" "$HS_CONNS" "$DUR"
		else
			# shellcheck disable=SC2016
			printf '\nNew connections, resumed TLS 1.3 sessions (PSK + %s): `tlshandshake -resume -c %s -d %ss`.\n' "$HS_GROUPS" "$HS_CONNS" "$DUR"
		fi
		cat <<EOF

| server | connections/s (median) | range | p99 connect + handshake | server CPU / connection | runs used |
|---|--:|--:|--:|--:|--:|
EOF
		for s in "${SERVERS[@]}"; do
			printf '| %s | %s | %s | %s ms | %s µs | %s |\n' "$s" "$(fmt "$(med "$t" "$s" 4)" 0)" "$(rng "$t" "$s")" \
				"$(fmt "$(med "$t" "$s" 5)" 2)" "$(fmt "$(med "$t" "$s" 7)" 1)" "$(runs_used "$t" "$s")"
		done
	done
	cat <<EOF

| comparison | ratio | target | p99 tandem / other | server CPU tandem / other |
|---|--:|--:|--:|--:|
EOF
	local tt rows=()
	((RUN_H2)) && rows+=("h2 tandem bare 0.9" "h2 tandem nginx -" "h2 nginx bare -")
	for mode in $HS_MODES; do
		if [[ $mode == full ]]; then rows+=("hs-full tandem nginx 0.9" "hs-full bare nginx -"); else rows+=("hs-resume tandem nginx -"); fi
	done
	local row a b target label
	for row in "${rows[@]}"; do
		read -r tt a b target <<<"$row"
		case $tt in
		h2) label="HTTP/2 1 KiB req/s" ;;
		hs-full) label="full handshakes/s" ;;
		hs-resume) label="resumed handshakes/s" ;;
		esac
		[[ $target == - ]] && target="" || target="≥ $target"
		printf '| %s, %s / %s | %s | %s | %s / %s ms | %s / %s µs |\n' "$label" "$a" "$b" \
			"$(ratio "$(med "$tt" "$a" 4)" "$(med "$tt" "$b" 4)")" "$target" \
			"$(fmt "$(med "$tt" "$a" 5)" 2)" "$(fmt "$(med "$tt" "$b" 5)" 2)" \
			"$(fmt "$(med "$tt" "$a" 7)" 1)" "$(fmt "$(med "$tt" "$b" 7)" 1)"
	done
	if [[ -f $TMP/hs-errors ]]; then
		printf '\nHandshake client errors (below 1 %% of connections, kept):\n\n'
		sed 's/^/    /' "$TMP/hs-errors"
	fi
	cat <<EOF

<details><summary>All runs</summary>

| test | server | round | req/s or conn/s | p99 ms | other CPU % | server CPU µs per req/conn |
|---|---|--:|--:|--:|--:|--:|
$(awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7}' "$RESULTS")

</details>
EOF
}

# ================================================================= main

tls_main() {
	ensure_tools nginx:nginx-light h2load:nghttp2-client curl:curl openssl:openssl
	"$NGINX" -V 2>&1 | grep -q -- '--with-http_v2_module' || die "$NGINX has no http_v2_module"
	"$NGINX" -V 2>&1 | grep -q -- '--with-http_ssl_module' || die "$NGINX has no http_ssl_module"
	NGINX_LIBSSL=$("$NGINX" -V 2>&1 | sed -n 's/^built with .*running with \(OpenSSL [^ ]*\).*/\1/p; s/^built with \(OpenSSL [^ ]*\).*/\1/p' | head -n 1)
	LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
	bench_init
	make_cert
	RESULTS=$TMP/results.tsv
	: >"$RESULTS"
	REPEATED=0

	log "building barehandler and tlshandshake"
	(cd "$BENCH_REPO" && go build -o "$TMP/barehandler" ./bench/barehandler &&
		go build -o "$TMP/tlshandshake" ./bench/tlshandshake) || die "cannot build bench/barehandler or bench/tlshandshake"

	SERVERS=(tandem nginx bare)
	if ! tandem_usable; then
		log "skipping tandem: $TANDEM_SKIP"
		SERVERS=(nginx bare)
	fi
	declare -gA PORT ROOT
	local s
	for s in "${SERVERS[@]}"; do PORT[$s]=$(free_port); done
	for s in "${SERVERS[@]}"; do
		case $s in
		tandem) start_tandem_tls "${PORT[$s]}" && ROOT[$s]=$TANDEM_PID ;;
		nginx) start_nginx_tls "${PORT[$s]}" && ROOT[$s]=$NGINX_PID ;;
		bare) start_bare_tls "${PORT[$s]}" && ROOT[$s]=$BARE_PID ;;
		esac
	done
	ROOTS=()
	for s in "${SERVERS[@]}"; do ROOTS+=("${ROOT[$s]}"); done
	for s in "${SERVERS[@]}"; do check_h2 "$s" "${PORT[$s]}"; done
	log "all servers answer /1k.bin over TLS + HTTP/2 with 200 and the right bytes: ${SERVERS[*]}"

	log "warm-up (1s per server and test)"
	local mode
	for s in "${SERVERS[@]}"; do
		((RUN_H2)) && NOISE_MAX=100 run_h2 "$s" warm 1
		for mode in $HS_MODES; do NOISE_MAX=100 run_hs "$mode" "$s" warm 1; done
	done

	local r i n=${#SERVERS[@]}
	for ((r = 1; r <= ROUNDS; r++)); do
		((RUN_H2)) && for ((i = 0; i < n; i++)); do run_h2 "${SERVERS[$(((i + r - 1) % n))]}" "$r" "$DUR"; done
		for mode in $HS_MODES; do
			for ((i = 0; i < n; i++)); do run_hs "$mode" "${SERVERS[$(((i + r - 1) % n))]}" "$r" "$DUR"; done
		done
	done
	# Still right after the load.
	for s in "${SERVERS[@]}"; do check_h2 "$s" "${PORT[$s]}"; done
	report
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	tls_main "$@"
fi
