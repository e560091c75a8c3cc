#!/usr/bin/env bash
# Response-cache benchmark: a cache hit against tandem's own static file
# rate for the same HTML page, in the same run, with nginx's proxy_cache as
# the reference (issue 6: hits at >= 0.9x tandem static).
#
#   bash bench/cache.sh                          # DURATION=5s ROUNDS=3 CONNS=64
#   DURATION=10 ROUNDS=5 bash bench/cache.sh > cache-results.md
#
# Four cases per page size (SIZES, default "1024 10240" bytes of generated
# HTML), all alternating within one run:
#   tandem-static  tandem serving the page as a static file (the baseline)
#   tandem-cache   tandem `cache 10m; proxy http://ORIGIN;` — warmed, hits
#   nginx-cache    nginx proxy_cache (proxy_cache_path in the temp dir,
#                  keys_zone, proxy_cache_valid 200 10m), warmed, hits
#   nginx-static   nginx serving the file (sendfile, open_file_cache)
# One tandem process and one nginx process serve all their cases, each in a
# location (/static/..., /cached/...), so a case differs only in the handler.
#
# The origin is a tiny Python (stdlib) HTTP/1.1 server serving the same
# bytes with no Cache-Control (so `cache 10m` / proxy_cache_valid decide the
# freshness) and counting the requests it answers (GET /__count). Before
# measuring, every case is checked with curl: 200, exactly the page's
# bytes, keep-alive, and for the cache cases `X-Cache: HIT` (tandem) /
# `X-Cache-Status: HIT` (nginx, add_header $upstream_cache_status). The
# origin's counter is read before and after the measured runs: any origin
# request during them fails the script, so every measured response is a hit.
#
# Noise control, CPU/request and medians are as in bench/compress.sh: wait
# for an idle machine before each run, count other processes' CPU during
# it, repeat noisy runs (at most twice, within NOISE_BUDGET); CPU/req is the
# server's own utime+stime (/proc/PID/stat; nginx master + workers) over the
# run divided by wrk's request count.
#
# Everything runs on 127.0.0.1 with free ports, in a throwaway directory
# removed on exit (KEEP=1 keeps it). Markdown goes to stdout, progress to
# stderr.
#
# Knobs (environment):
#   DURATION   wrk duration per run; a bare number is seconds (default 5s)
#   ROUNDS     rounds; every case runs once per round      (default 3)
#   CONNS      wrk connections                             (default 64)
#   THREADS    wrk threads                                 (default 2)
#   SIZES      page sizes in bytes                         (default "1024 10240")
#   NOISE_MAX  % of all CPU other processes may use during a run before it
#              is repeated (at most twice)                  (default 10)
#   NOISE_BUDGET seconds the whole run may spend waiting for an idle
#              machine and repeating noisy runs             (default 120)
#   TANDEM_BIN use this tandem binary instead of building ./cmd/tandem
#   KEEP       set to 1 to keep the temp dir (configs, logs, wrk output)
set -euo pipefail

DURATION=${DURATION:-${DUR:-5s}}
[[ $DURATION =~ ^[0-9]+$ ]] && DURATION=${DURATION}s
[[ $DURATION =~ ^[0-9]+[sm]$ ]] || { echo "DURATION: '$DURATION' is not N, Ns or Nm" >&2; exit 1; }
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
SIZES=${SIZES:-1024 10240}
NOISE_MAX=${NOISE_MAX:-10}
NOISE_BUDGET=${NOISE_BUDGET:-120}
KEEP=${KEEP:-0}
PY=/usr/bin/python3

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

in_range() { [[ $1 =~ ^[0-9]+$ ]] && (($1 >= $2 && $1 <= $3)); }
in_range "$ROUNDS" 1 50 || die "ROUNDS must be 1-50"
in_range "$CONNS" 1 4096 || die "CONNS must be 1-4096"
in_range "$THREADS" 1 "$CONNS" || die "THREADS must be 1-CONNS"
for z in $SIZES; do
	in_range "$z" 64 1048576 || die "SIZES: '$z' is not 64-1048576"
done

# ---------------------------------------------------------------- page

# gen_page N: a deterministic ASCII HTML page of exactly N bytes.
gen_page() {
	"$PY" - "$1" <<'PY'
import random, sys
n = int(sys.argv[1])
rng = random.Random(20240601 + n)
syl = "ka to re mi sun del par o e tion al in ver con stru li ne ab ser qu".split()
def word():
    return "".join(rng.choice(syl) for _ in range(1 + rng.randrange(3)))
head = ('<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<title>Article | tandem example site</title>\n'
        '<link rel="stylesheet" href="/static/site.css">\n</head>\n<body>\n<main>\n')
tail = '</main>\n</body>\n</html>\n'
body = []
size = len(head) + len(tail)
while True:
    p = "<p>" + " ".join(word() for _ in range(8 + rng.randrange(20))) + ".</p>\n"
    if size + len(p) > n:
        break
    body.append(p)
    size += len(p)
page = head + "".join(body) + " " * (n - size) + tail
assert len(page) == n, (len(page), n)
sys.stdout.write(page)
PY
}

# ---------------------------------------------------------------- servers

# The origin: HTTP/1.1 with keep-alive, no caching headers, one counter.
start_origin() {
	local port=$1
	cat >"$TMP/origin.py" <<'PY'
import os, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port, root = int(sys.argv[1]), sys.argv[2]
lock, count = threading.Lock(), [0]
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_GET(self):
        if self.path == "/__count":
            body = b"%d\n" % count[0]
        else:
            with lock:
                count[0] += 1
            name = os.path.basename(self.path.split("?")[0])
            try:
                with open(os.path.join(root, name), "rb") as f:
                    body = f.read()
            except OSError:
                self.send_error(404)
                return
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
	start_bg "$TMP/origin.log" "$PY" "$TMP/origin.py" "$port" "$DOCROOT/static"
	ORIGIN_PID=$LAST_PID
	wait_ready origin "$ORIGIN_PID" "http://127.0.0.1:$port/__count" "$TMP/origin.log"
}
origin_count() { curl -s --max-time 5 "http://127.0.0.1:${ORIGIN_PORT}/__count"; }

start_nginx_cache() {
	local port=$1
	mkdir -p "$TMP/nginx-cache"
	{
		nginx_head nginx
		nginx_static
		cat <<EOF
	types { text/html html; }
	proxy_cache_path $TMP/nginx-cache levels=1:2 keys_zone=bench:10m max_size=256m inactive=60m use_temp_path=off;
	upstream origin {
		server 127.0.0.1:$ORIGIN_PORT;
		keepalive 16;
	}
	server {
		listen 127.0.0.1:$port default_server;
		root $DOCROOT;
		location /cached/ {
			proxy_pass http://origin;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_cache bench;
			proxy_cache_valid 200 10m;
			add_header X-Cache-Status \$upstream_cache_status;
		}
	}
}
EOF
	} >"$TMP/nginx.conf"
	"$NGINX" -t -p "$TMP" -c "$TMP/nginx.conf" >"$TMP/nginx-t.log" 2>&1 ||
		{ cat "$TMP/nginx-t.log" >&2; die "nginx -t rejected $TMP/nginx.conf"; }
	start_bg "$TMP/nginx.out" "$NGINX" -p "$TMP" -c "$TMP/nginx.conf"
	NGINX_PID=$LAST_PID
	wait_ready nginx "$NGINX_PID" "http://127.0.0.1:$port/static/page-${FIRST_SIZE}.html" "$TMP/nginx-error.log"
}

start_tandem_cache() {
	local port=$1
	cat >"$TMP/tandem.conf" <<EOF
pid_file $TMP/tandem.pid;
access_log off;
cache {
	max_size 64m;
}
site _ {
	listen 127.0.0.1:$port default;
	root $DOCROOT;
	location /cached/ {
		cache 10m;
		proxy http://127.0.0.1:$ORIGIN_PORT;
	}
}
EOF
	"$TMP/tandem" check -c "$TMP/tandem.conf" >&2 || die "tandem check rejected $TMP/tandem.conf"
	start_bg "$TMP/tandem.log" "$TMP/tandem" run -c "$TMP/tandem.conf"
	TANDEM_PID=$LAST_PID
	wait_ready tandem "$TANDEM_PID" "http://127.0.0.1:$port/static/page-${FIRST_SIZE}.html" "$TMP/tandem.log"
}

# ---------------------------------------------------------------- setup

ensure_tools nginx:nginx-light wrk:wrk curl:curl
[[ -x $PY ]] || apt_install python3
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_init
build_tandem || die "tandem does not build (./cmd/tandem)"

mkdir -p "$DOCROOT/static"
declare -A PAGE_SHA
for z in $SIZES; do
	gen_page "$z" >"$DOCROOT/static/page-$z.html"
	(($(wc -c <"$DOCROOT/static/page-$z.html") == z)) || die "generated page has the wrong size"
	PAGE_SHA[$z]=$(sha256sum "$DOCROOT/static/page-$z.html" | cut -c1-12)
done
chmod -R a+rX "$DOCROOT"
FIRST_SIZE=${SIZES%% *}

ORIGIN_PORT=$(free_port)
start_origin "$ORIGIN_PORT"
declare -A PORT
PORT[nginx]=$(free_port)
PORT[tandem]=$(free_port)
start_nginx_cache "${PORT[nginx]}"
start_tandem_cache "${PORT[tandem]}"

# Cases: NAME -> server and path prefix. Order is the rotation order.
CASES=(tandem-static tandem-cache nginx-cache nginx-static)
declare -A CASE_SERVER=([tandem-static]=tandem [tandem-cache]=tandem [nginx-cache]=nginx [nginx-static]=nginx)
declare -A CASE_PREFIX=([tandem-static]=static [tandem-cache]=cached [nginx-cache]=cached [nginx-static]=static)
case_url() { echo "http://127.0.0.1:${PORT[${CASE_SERVER[$1]}]}/${CASE_PREFIX[$1]}/page-$2.html"; }

# ---------------------------------------------------------------- checks

hdr_val() { awk -F': *' -v h="${2,,}" 'tolower($1) == h {sub(/\r$/, "", $2); print $2}' "$1" | tail -n 1; }

# check_case CASE SIZE: 200, exactly the page, keep-alive; for the cache
# cases, the second request (the first may be the miss) is a HIT.
declare -A HIT_HDRS
check_case() {
	local c=$1 z=$2 url hdr=$TMP/check.hdr body=$TMP/check.body got conns xc
	url=$(case_url "$c" "$z")
	curl -s -o /dev/null "$url" # warms the cache cases
	got=$(curl -s -D "$hdr" -o "$body" -w '%{http_code}' "$url")
	[[ $got == 200 ]] || die "$c $url: status $got, want 200"
	cmp -s "$body" "$DOCROOT/static/page-$z.html" || die "$c $url: body differs from the page"
	case $c in
	tandem-cache)
		xc=$(hdr_val "$hdr" X-Cache)
		[[ $xc == HIT ]] || die "$c $url: X-Cache '$xc', want HIT"
		HIT_HDRS[$c]="X-Cache: $xc; Age: $(hdr_val "$hdr" Age); Cache-Status: $(hdr_val "$hdr" Cache-Status)"
		;;
	nginx-cache)
		xc=$(hdr_val "$hdr" X-Cache-Status)
		[[ $xc == HIT ]] || die "$c $url: X-Cache-Status '$xc', want HIT"
		HIT_HDRS[$c]="X-Cache-Status: $xc"
		;;
	esac
	conns=$(curl -s -o /dev/null -o /dev/null -w '%{num_connects}\n' "$url" "$url" | tail -n 1)
	[[ $conns == 0 ]] || die "$c $url: connection not kept alive between requests"
	RESP_HDR_BYTES[$c,$z]=$(wc -c <"$hdr")
	rm -f "$hdr" "$body"
}
declare -A RESP_HDR_BYTES
for z in $SIZES; do
	for c in "${CASES[@]}"; do
		check_case "$c" "$z"
		log "check $c $z: 200, page bytes, keep-alive${HIT_HDRS[$c]:+, ${HIT_HDRS[$c]}}; header block ${RESP_HDR_BYTES[$c,$z]} bytes"
	done
done

# ---------------------------------------------------------------- noise
# (as in bench/compress.sh)

noise_init
SRV_PIDS[nginx]="$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"
SRV_PIDS[tandem]=$TANDEM_PID

RESULTS=$TMP/results.tsv
: >"$RESULTS"

# run_wrk CASE SIZE ROUND DURATION: one run; appends "case size round req/s
# p99_ms cpu_us/req foreign% wrk_us/req" to RESULTS unless ROUND is "warm".
run_wrk() {
	local c=$1 z=$2 round=$3 dur=$4 url out cpu wrkcpu
	url=$(case_url "$c" "$z")
	out=$TMP/wrk-$c-$z-$round.txt
	measure_wrk "round $round $c $z" "$out" "$round" "server_ticks ${CASE_SERVER[$c]}" \
		-t"$THREADS" -c"$CONNS" -d"$dur" --timeout 10s --latency "$url"
	[[ $round == warm ]] && return
	cpu=$(us_per_req "${WRK_TICKS[1]}") wrkcpu=$(us_per_req "$WRK_CHILD")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$z" "$round" "$WRK_RPS" "$WRK_P99" "$cpu" "$WRK_FOREIGN" "$wrkcpu" >>"$RESULTS"
	log "$(printf 'round %s  %-13s %6s  %9s req/s  p99 %8s ms  %7s us CPU/req  other CPU %5s%%' \
		"$round" "$c" "$z" "$WRK_RPS" "$WRK_P99" "$cpu" "$WRK_FOREIGN")"
}

log "warm-up (1s per case and size)"
for z in $SIZES; do
	for c in "${CASES[@]}"; do run_wrk "$c" "$z" warm 1s; done
done

ORIGIN_BEFORE=$(origin_count)
[[ $ORIGIN_BEFORE =~ ^[0-9]+$ ]] || die "origin counter unreadable: '$ORIGIN_BEFORE'"

# Within a round the cases rotate (the start moves by one each round) and
# the sizes alternate, so drift lands on every case alike.
NC=${#CASES[@]}
read -ra SZ <<<"$SIZES"
for ((r = 1; r <= ROUNDS; r++)); do
	sizes=("${SZ[@]}")
	if ((r % 2 == 0)) && ((${#SZ[@]} == 2)); then sizes=("${SZ[1]}" "${SZ[0]}"); fi
	for z in "${sizes[@]}"; do
		for ((i = 0; i < NC; i++)); do
			run_wrk "${CASES[$(((i + r - 1) % NC))]}" "$z" "$r" "$DURATION"
		done
	done
done

ORIGIN_AFTER=$(origin_count)
((ORIGIN_AFTER == ORIGIN_BEFORE)) ||
	die "the origin answered $((ORIGIN_AFTER - ORIGIN_BEFORE)) requests during the measured runs: not all were cache hits"
# And the caches still say HIT after the runs.
for z in $SIZES; do
	[[ $(curl -s -D - -o /dev/null "$(case_url tandem-cache "$z")" | hdr_val /dev/stdin X-Cache) == HIT ]] ||
		die "tandem-cache $z: not a HIT after the runs"
	[[ $(curl -s -D - -o /dev/null "$(case_url nginx-cache "$z")" | hdr_val /dev/stdin X-Cache-Status) == HIT ]] ||
		die "nginx-cache $z: not a HIT after the runs"
done
log "origin requests during the measured runs: $((ORIGIN_AFTER - ORIGIN_BEFORE)) (counter $ORIGIN_BEFORE before, $ORIGIN_AFTER after)"

# ---------------------------------------------------------------- report

select_used

declare -A RPS P99 CPU
for z in $SIZES; do
	for c in "${CASES[@]}"; do
		RPS[$c,$z]=$(results_median "$c" "$z" 4)
		P99[$c,$z]=$(results_median "$c" "$z" 5)
		CPU[$c,$z]=$(results_median "$c" "$z" 6)
	done
done

noise=$(noise_summary 7)
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
nginx_v=$({ "$NGINX" -v 2>&1 || true; } | sed 's/^nginx version: //')
wrk_v=$({ wrk -v 2>&1 || true; } | awk 'NR == 1 {print $2}')
py_v=$("$PY" -V 2>&1 | awk '{print $2}')
lru_v=$(cd "$BENCH_REPO" && go list -m -f '{{.Version}}' github.com/hashicorp/golang-lru/v2 2>/dev/null || echo "?")
rev=$(cd "$BENCH_REPO" && git rev-parse --short HEAD 2>/dev/null || echo "?")
# shellcheck disable=SC2015 # echo cannot fail
dirty=$(cd "$BENCH_REPO" && git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo "+changes" || true)

cat <<EOF
### Response cache: hits vs tandem's static file rate, and vs nginx proxy_cache

$(date -u '+%Y-%m-%d %H:%M UTC') · tandem ${rev}${dirty} · $(nproc) CPUs (${cpu_model}) · $(go version | awk '{print $3}') · golang-lru/v2 ${lru_v} · ${nginx_v} · wrk ${wrk_v} · origin: Python ${py_v} http.server · load average before the run: ${LOAD_BEFORE}

\`DURATION=$DURATION ROUNDS=$ROUNDS CONNS=$CONNS THREADS=$THREADS SIZES="$SIZES" NOISE_MAX=$NOISE_MAX NOISE_BUDGET=$NOISE_BUDGET bash bench/cache.sh\` — medians of $ROUNDS rounds; wrk -t$THREADS -c$CONNS, keep-alive, no Accept-Encoding. Pages: generated HTML ($(for z in $SIZES; do printf '%s B sha256 %s… ' "$z" "${PAGE_SHA[$z]}"; done| sed 's/ $//')).
Every cache response checked before the runs (\`X-Cache: HIT\` / \`X-Cache-Status: HIT\`, exact bytes) and after; origin requests during the measured runs: $((ORIGIN_AFTER - ORIGIN_BEFORE)).
CPU used by other processes during the runs: $noise of the machine; runs repeated for exceeding ${NOISE_MAX}%: $REPEATED. "CPU/req" is the server's own utime+stime per response (nginx: master + workers).

| page | case | response header bytes | req/s | req/s range | p99 latency | CPU/req | runs used |
|--:|---|--:|--:|--:|--:|--:|--:|
EOF
for z in $SIZES; do
	for c in "${CASES[@]}"; do
		printf '| %s B | %s | %s | %s | %s | %s ms | %s µs | %s |\n' "$z" "$c" "${RESP_HDR_BYTES[$c,$z]}" \
			"$(fmt "${RPS[$c,$z]}" 0)" "$(results_range "$c" "$z")" "$(fmt "${P99[$c,$z]}" 2)" \
			"$(fmt "${CPU[$c,$z]}" 1)" "$(results_counts "$c" "$z")"
	done
done

cat <<EOF

| page | comparison | req/s ratio | CPU/req ratio | p99 |
|--:|---|--:|--:|--:|
EOF
for z in $SIZES; do
	printf '| %s B | tandem cache hit / tandem static (target ≥ 0.9) | **%s** | %s | %s / %s ms |\n' "$z" \
		"$(ratio "${RPS[tandem-cache,$z]}" "${RPS[tandem-static,$z]}")" \
		"$(ratio "${CPU[tandem-cache,$z]}" "${CPU[tandem-static,$z]}")" \
		"$(fmt "${P99[tandem-cache,$z]}" 2)" "$(fmt "${P99[tandem-static,$z]}" 2)"
	printf '| %s B | tandem cache hit / nginx proxy_cache hit | **%s** | %s | %s / %s ms |\n' "$z" \
		"$(ratio "${RPS[tandem-cache,$z]}" "${RPS[nginx-cache,$z]}")" \
		"$(ratio "${CPU[tandem-cache,$z]}" "${CPU[nginx-cache,$z]}")" \
		"$(fmt "${P99[tandem-cache,$z]}" 2)" "$(fmt "${P99[nginx-cache,$z]}" 2)"
	printf '| %s B | nginx proxy_cache hit / nginx static | %s | %s | %s / %s ms |\n' "$z" \
		"$(ratio "${RPS[nginx-cache,$z]}" "${RPS[nginx-static,$z]}")" \
		"$(ratio "${CPU[nginx-cache,$z]}" "${CPU[nginx-static,$z]}")" \
		"$(fmt "${P99[nginx-cache,$z]}" 2)" "$(fmt "${P99[nginx-static,$z]}" 2)"
	printf '| %s B | tandem static / nginx static | %s | %s | %s / %s ms |\n' "$z" \
		"$(ratio "${RPS[tandem-static,$z]}" "${RPS[nginx-static,$z]}")" \
		"$(ratio "${CPU[tandem-static,$z]}" "${CPU[nginx-static,$z]}")" \
		"$(fmt "${P99[tandem-static,$z]}" 2)" "$(fmt "${P99[nginx-static,$z]}" 2)"
done
echo
echo "req/s ratios above 1 and CPU/req ratios below 1 favour the first-named case."
if [[ -f $TMP/socket-errors ]]; then
	echo
	echo "wrk socket errors: $(tr '\n' ';' <"$TMP/socket-errors")"
fi

cat <<EOF

Hit headers seen: tandem \`${HIT_HDRS[tandem-cache]}\`; nginx \`${HIT_HDRS[nginx-cache]}\`.

<details><summary>All runs</summary>

| round | page | case | req/s | p99 ms | server CPU µs/req | wrk CPU µs/req | other CPU % |
|--:|--:|---|--:|--:|--:|--:|--:|
$(awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $3, $2, $1, $4, $5, $6, $8, $7}' "$RESULTS")

</details>
EOF
