#!/usr/bin/env bash
# Front-end floor: what the HTTP/1.1 server underneath costs per request,
# with nothing behind it. Four servers answer `GET /` with the same 13
# bytes over keep-alive:
#   nginx     `return 200 "abcdefghijklm";`, one worker per core
#   fasthttp  bench/fasthello (github.com/valyala/fasthttp, its own module)
#   net/http  bench/barehandler -size 13 (Go's net/http, nothing else)
#   tandem    a 13-byte static file, `root` and nothing else
# tandem's request path is net/http's (DESIGN.md), so net/http's row is
# the floor under every tandem front end; fasthttp's shows what a Go
# HTTP/1.1 server built differently costs. The app and proxy benchmarks
# (app.sh, proxy.sh) compare tandem with nginx, whose own share of a
# request is about nginx's row here.
#
#   bash bench/frontfloor.sh              # DUR=5s ROUNDS=3 CONNS=32 THREADS=2
#
# Knobs (environment): DUR, ROUNDS, CONNS, THREADS, NOISE_MAX (% of the
# machine other processes may use during a run before it is repeated;
# default 10), NOISE_BUDGET (seconds for waiting and repeats; default 120),
# TANDEM_BIN (use this tandem binary), KEEP=1 (keep the temp dir).
# Markdown goes to stdout, progress to stderr. fasthello's module is
# downloaded by `go build` on first use.
set -euo pipefail

DUR=${DUR:-5s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
NOISE_MAX=${NOISE_MAX:-10}
NOISE_BUDGET=${NOISE_BUDGET:-120}
BODY=abcdefghijklm

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, not '$ROUNDS'"
[[ $CONNS =~ ^[1-9][0-9]*$ ]] || die "CONNS must be a positive integer, not '$CONNS'"
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || die "THREADS must be a positive integer, not '$THREADS'"
((THREADS <= CONNS)) || die "THREADS ($THREADS) must not exceed CONNS ($CONNS)"

ensure_tools nginx:nginx-light wrk:wrk curl:curl
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_init
printf '%s' "$BODY" >"$DOCROOT/hello.txt"

SERVERS=(nginx fasthttp nethttp tandem)
declare -A PORT ROOT
for s in "${SERVERS[@]}"; do PORT[$s]=$(free_port); done

log "building tandem, barehandler and fasthello"
build_tandem || die "tandem does not build (./cmd/tandem)"
(cd "$BENCH_REPO" && go build -o "$TMP/barehandler" ./bench/barehandler) ||
	die "bench/barehandler does not build"
(cd "$BENCH_REPO/bench/fasthello" && go build -o "$TMP/fasthello" .) >"$TMP/fasthello-build.log" 2>&1 ||
	{ cat "$TMP/fasthello-build.log" >&2; die "bench/fasthello does not build (its module needs github.com/valyala/fasthttp)"; }

{
	nginx_head nginx
	cat <<EOF
	server {
		listen 127.0.0.1:${PORT[nginx]} default_server;
		default_type text/plain;
		location / { return 200 "$BODY"; }
	}
}
EOF
} >"$TMP/nginx.conf"
start_bg "$TMP/nginx.out" "$NGINX" -p "$TMP" -c "$TMP/nginx.conf"
ROOT[nginx]=$LAST_PID
start_bg "$TMP/fasthello.log" "$TMP/fasthello" -listen "127.0.0.1:${PORT[fasthttp]}" -size ${#BODY}
ROOT[fasthttp]=$LAST_PID
start_bg "$TMP/bare.log" "$TMP/barehandler" -listen "127.0.0.1:${PORT[nethttp]}" -size ${#BODY}
ROOT[nethttp]=$LAST_PID
cat >"$TMP/tandem.conf" <<EOF
pid_file $TMP/tandem.pid;
access_log off;
site _ {
	listen 127.0.0.1:${PORT[tandem]} default;
	root $DOCROOT;
}
EOF
start_bg "$TMP/tandem.log" "$TMP/tandem" run -c "$TMP/tandem.conf"
ROOT[tandem]=$LAST_PID

declare -A URL=(
	[nginx]="http://127.0.0.1:${PORT[nginx]}/"
	[fasthttp]="http://127.0.0.1:${PORT[fasthttp]}/"
	[nethttp]="http://127.0.0.1:${PORT[nethttp]}/"
	[tandem]="http://127.0.0.1:${PORT[tandem]}/hello.txt"
)
declare -A LOGF=([nginx]=$TMP/nginx-error.log [fasthttp]=$TMP/fasthello.log [nethttp]=$TMP/bare.log [tandem]=$TMP/tandem.log)
for s in "${SERVERS[@]}"; do
	wait_ready "$s" "${ROOT[$s]}" "${URL[$s]}" "${LOGF[$s]}"
	printf '%s' "$BODY" >"$TMP/want"
	check_file "$s" "${URL[$s]}" ${#BODY} "$TMP/want"
done
log "all four answer 200 with the same ${#BODY} bytes"

noise_init
# Everything the servers do: nginx's workers are its master's children.
for s in "${SERVERS[@]}"; do
	SRV_PIDS[$s]="${ROOT[$s]} $(pgrep -P "${ROOT[$s]}" | tr '\n' ' ' || true)"
done

RESULTS=$TMP/results.tsv
: >"$RESULTS"

# run_wrk SERVER ROUND DURATION: one run; appends "server hello round req/s
# p99_ms cpu_us/req foreign%" to RESULTS unless ROUND is "warm".
run_wrk() {
	local s=$1 round=$2 dur=$3 cpu
	measure_wrk "round $round $s" "$TMP/wrk-$s-$round.txt" "$round" "server_ticks $s" \
		-t"$THREADS" -c"$CONNS" -d"$dur" --timeout 10s --latency "${URL[$s]}"
	[[ $round == warm ]] && return
	cpu=$(us_per_req "${WRK_TICKS[1]}")
	printf '%s\thello\t%s\t%s\t%s\t%s\t%s\n' "$s" "$round" "$WRK_RPS" "$WRK_P99" "$cpu" "$WRK_FOREIGN" >>"$RESULTS"
	log "$(printf 'round %s  %-8s %10s req/s  p99 %8s ms  %6s us CPU/req  other CPU %5s%%' \
		"$round" "$s" "$WRK_RPS" "$WRK_P99" "$cpu" "$WRK_FOREIGN")"
}

log "warm-up (1s per server)"
for s in "${SERVERS[@]}"; do run_wrk "$s" warm 1s; done
# Servers alternate; the first rotates from round to round.
n=${#SERVERS[@]}
for ((r = 1; r <= ROUNDS; r++)); do
	for ((i = 0; i < n; i++)); do
		run_wrk "${SERVERS[$(((i + r - 1) % n))]}" "$r" "$DUR"
	done
done

# ---------------------------------------------------------------- report

select_used
declare -A RPS P99 CPU
for s in "${SERVERS[@]}"; do
	RPS[$s]=$(results_median "$s" hello 4)
	P99[$s]=$(results_median "$s" hello 5)
	CPU[$s]=$(results_median "$s" hello 6)
done
declare -A LABEL=(
	[nginx]="nginx \`return 200\`"
	[fasthttp]='fasthttp (bench/fasthello)'
	[nethttp]='net/http (bench/barehandler)'
	[tandem]='tandem, static file'
)
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
nginx_v=$({ "$NGINX" -v 2>&1 || true; } | sed 's/^nginx version: //')
wrk_v=$({ wrk -v 2>&1 || true; } | awk 'NR == 1 {print $2}')
fasthttp_v=$(cd "$BENCH_REPO/bench/fasthello" && go list -m -f '{{.Version}}' github.com/valyala/fasthttp 2>/dev/null || echo "?")
rev=$(cd "$BENCH_REPO" && git rev-parse --short HEAD 2>/dev/null || echo "?")

cat <<EOF
### Front-end floor: nginx vs fasthttp vs net/http vs tandem, nothing behind them

$(date -u '+%Y-%m-%d %H:%M UTC') · tandem ${rev} · $(nproc) CPUs (${cpu_model}) · $(go version | awk '{print $3}') · fasthttp ${fasthttp_v} · ${nginx_v} · wrk ${wrk_v} · load average before: ${LOAD_BEFORE}

\`DUR=$DUR ROUNDS=$ROUNDS CONNS=$CONNS THREADS=$THREADS bash bench/frontfloor.sh\` — \`GET /\` answered with the same ${#BODY} bytes, \`wrk -t$THREADS -c$CONNS -d$DUR --latency\` with keep-alive, medians of $ROUNDS rounds (servers alternate, the first rotates each round).
CPU used by other processes during the runs: $(noise_summary 7) of the machine; runs repeated for exceeding ${NOISE_MAX}%: $REPEATED. "CPU/req" is the server's own utime+stime per response (nginx: master + workers).

| server | req/s | req/s range | p99 | CPU/req | req/s / nginx | CPU/req / nginx | runs used |
|---|--:|--:|--:|--:|--:|--:|--:|
EOF
for s in "${SERVERS[@]}"; do
	printf '| %s | %s | %s | %s ms | %s µs | %s | %s | %s |\n' "${LABEL[$s]}" \
		"$(fmt "${RPS[$s]}" 0)" "$(results_range "$s" hello)" "$(fmt "${P99[$s]}" 2)" \
		"$(fmt "${CPU[$s]}" 1)" "$(ratio "${RPS[$s]}" "${RPS[nginx]}")" \
		"$(ratio "${CPU[$s]}" "${CPU[nginx]}")" "$(results_counts "$s" hello)"
done
if [[ -f $TMP/socket-errors ]]; then
	echo
	echo "wrk socket errors: $(tr '\n' ';' <"$TMP/socket-errors")"
fi
cat <<EOF

<details><summary>All runs</summary>

| round | server | req/s | p99 ms | CPU µs/req | other CPU % |
|--:|---|--:|--:|--:|--:|
$(awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s |\n", $3, $1, $4, $5, $6, $7}' "$RESULTS")

</details>
EOF
