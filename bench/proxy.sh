#!/usr/bin/env bash
# Reverse-proxy benchmark: tandem → gunicorn vs nginx → gunicorn, with
# Caddy → gunicorn as the Go reference (CADDY=0 leaves it out).
#
#   bash bench/proxy.sh                       # defaults: DURATION=5s ROUNDS=3
#   DURATION=10 ROUNDS=5 bash bench/proxy.sh
#
# One gunicorn (sync workers, the default class; WORKERS workers) runs the
# stdlib hello-world app (bench/apps/hello.py, 13 bytes) and listens on a
# unix socket and on 127.0.0.1 TCP at once, so both front ends proxy to the
# very same workers:
#   tandem  `proxy unix:SOCK;` and `proxy http://127.0.0.1:PORT;` (defaults:
#           X-Forwarded-For/-Proto added, request bodies buffered, upstream
#           keep-alive pool)
#   nginx   worker_processes = cores, an `upstream` block with `keepalive 32`,
#           proxy_http_version 1.1 and `Connection ""` (what an operator
#           writes to get upstream keep-alive), gunicorn's documented
#           X-Forwarded-* and Host headers
#   Caddy   Debian's caddy, `reverse_proxy unix//SOCK` and `reverse_proxy
#           127.0.0.1:PORT` with its defaults (X-Forwarded-* added,
#           upstream keep-alive pool), admin API and automatic HTTPS off.
#           It is net/http and httputil.ReverseProxy, the parts tandem's
#           front end is built on, so tandem / Caddy shows what tandem's
#           own work gains over a plain Go proxy, and Caddy / nginx the
#           distance of that foundation from nginx's event loop.
# gunicorn's sync workers close the connection after every response, so
# neither front end gets to reuse an upstream connection: both pay a
# connect per request, as in production with this worker class.
#
# wrk keeps its client connections alive. Within each round the runs
# (tandem/nginx/Caddy × unix/tcp) alternate and the first one rotates; the
# tables show medians over the rounds, the ratios tandem / nginx (and
# tandem / Caddy, Caddy / nginx), and the CPU time per request spent in
# each front end (tandem's Go process, nginx's master + workers, or
# Caddy's process) and in gunicorn. The noise control (wait for an idle
# machine, repeat runs disturbed by other processes) is bench/app.sh's.
#
# Everything runs on 127.0.0.1 with free ports and sockets in a throwaway
# directory, killed and removed on exit (KEEP=1 keeps it). Markdown goes to
# stdout, progress to stderr: `bash bench/proxy.sh > proxy-results.md`.
#
# Knobs (environment):
#   DURATION   wrk duration per run; a plain number is seconds (default 5s;
#              DUR is accepted too, as in bench/app.sh)
#   ROUNDS     rounds; every run happens once per round       (default 3)
#   CONNS      wrk connections                                (default 32)
#   THREADS    wrk threads                                    (default 2)
#   WORKERS    gunicorn sync workers                          (default 4)
#   VARIANTS   which upstream transports: "unix tcp"          (default both)
#   CADDY      1 also runs Caddy, 0 leaves it out             (default 1)
#   NOISE_MAX, NOISE_BUDGET, TANDEM_BIN, KEEP  as bench/app.sh
set -euo pipefail

DUR=${DURATION:-${DUR:-5s}}
[[ $DUR =~ ^[0-9]+$ ]] && DUR=${DUR}s
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-4}
VARIANTS=${VARIANTS:-unix tcp}
CADDY=${CADDY:-1}

# app.sh brings the server helpers (start_gunicorn, wait_200, check_body),
# the noise-controlled run_wrk and the median/ratio/fmt helpers; sourcing
# it does not run its benchmark.
# shellcheck source=bench/app.sh
. "$(dirname "${BASH_SOURCE[0]}")/app.sh"

PROXY_BODY="Hello, World!"

# ensure_proxy_tools installs only what this benchmark runs (app.sh's
# ensure_app_tools would also pull Flask and uWSGI).
ensure_proxy_tools() {
	local debs=()
	[[ -x $PY ]] || debs+=(python3)
	command -v gunicorn >/dev/null || debs+=(gunicorn)
	if ((${#debs[@]})); then apt_install "${debs[@]}"; fi
	local tools=(nginx:nginx-light wrk:wrk curl:curl)
	[[ $CADDY == 1 ]] && tools+=(caddy:caddy)
	ensure_tools "${tools[@]}"
}

# start_tandem_proxy UNIX_PORT TCP_PORT: one tandem, one site per variant
# ("-" leaves a variant out), each proxying everything to gunicorn the way
# the docs show it. Sets TANDEM_PID.
start_tandem_proxy() {
	local uport=$1 tport=$2
	{
		cat <<EOF
pid_file $TMP/tandem-proxy.pid;
access_log off;
EOF
		if [[ $uport != - ]]; then
			cat <<EOF
site unix.bench {
	listen 127.0.0.1:$uport default;
	location / { proxy unix:$GUNICORN_SOCK; }
}
EOF
		fi
		if [[ $tport != - ]]; then
			cat <<EOF
site tcp.bench {
	listen 127.0.0.1:$tport default;
	location / { proxy http://127.0.0.1:$GUNICORN_PORT; }
}
EOF
		fi
	} >"$TMP/tandem-proxy.conf"
	"$TMP/tandem" check -c "$TMP/tandem-proxy.conf" >&2 || die "tandem rejects its proxy config (is proxy supported by this build?)"
	start_bg "$TMP/tandem-proxy.log" "$TMP/tandem" run -c "$TMP/tandem-proxy.conf"
	TANDEM_PID=$LAST_PID
	[[ $uport == - ]] || wait_200 "tandem → unix" "$TANDEM_PID" "$TMP/tandem-proxy.log" "http://127.0.0.1:$uport/"
	[[ $tport == - ]] || wait_200 "tandem → tcp" "$TANDEM_PID" "$TMP/tandem-proxy.log" "http://127.0.0.1:$tport/"
}

# start_nginx_keepalive UNIX_PORT TCP_PORT: nginx as an operator configures
# a reverse proxy to gunicorn with upstream keep-alive; one server block per
# variant ("-" leaves one out). Client side as bench/static.sh's nginx.
# Sets NGINX_PID.
start_nginx_keepalive() {
	local uport=$1 tport=$2
	{
		nginx_head nginx-proxy
		cat <<EOF
	upstream gunicorn_unix {
		server unix:$GUNICORN_SOCK fail_timeout=0;
		keepalive 32;
	}
	upstream gunicorn_tcp {
		server 127.0.0.1:$GUNICORN_PORT fail_timeout=0;
		keepalive 32;
	}
EOF
		local port up
		for v in unix tcp; do
			port=$uport up=gunicorn_unix
			[[ $v == tcp ]] && port=$tport up=gunicorn_tcp
			[[ $port == - ]] && continue
			cat <<EOF
	server {
		listen 127.0.0.1:$port;
		location / {
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto \$scheme;
			proxy_set_header Host \$http_host;
			proxy_redirect off;
			proxy_pass http://$up;
		}
	}
EOF
		done
		echo "}"
	} >"$TMP/nginx-proxy.conf"
	start_bg "$TMP/nginx-proxy.out" "$NGINX" -p "$TMP" -c "$TMP/nginx-proxy.conf"
	NGINX_PID=$LAST_PID
	[[ $uport == - ]] || wait_200 "nginx → unix" "$NGINX_PID" "$TMP/nginx-proxy-error.log" "http://127.0.0.1:$uport/"
	[[ $tport == - ]] || wait_200 "nginx → tcp" "$NGINX_PID" "$TMP/nginx-proxy-error.log" "http://127.0.0.1:$tport/"
}

# start_caddy UNIX_PORT TCP_PORT: Caddy proxying to gunicorn as its docs
# show it (`reverse_proxy` with its defaults), one site per variant ("-"
# leaves one out). Its admin endpoint is off and its config and data
# directories are in $TMP, so nothing is written under $HOME. Sets
# CADDY_PID.
start_caddy() {
	local uport=$1 tport=$2
	{
		cat <<EOF
{
	admin off
	auto_https off
}
EOF
		if [[ $uport != - ]]; then
			cat <<EOF
:$uport {
	bind 127.0.0.1
	reverse_proxy unix/$GUNICORN_SOCK
}
EOF
		fi
		if [[ $tport != - ]]; then
			cat <<EOF
:$tport {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:$GUNICORN_PORT
}
EOF
		fi
	} >"$TMP/Caddyfile"
	mkdir -p "$TMP/caddy-config" "$TMP/caddy-data"
	start_bg "$TMP/caddy.log" env XDG_CONFIG_HOME="$TMP/caddy-config" XDG_DATA_HOME="$TMP/caddy-data" \
		caddy run --config "$TMP/Caddyfile" --adapter caddyfile
	CADDY_PID=$LAST_PID
	[[ $uport == - ]] || wait_200 "Caddy → unix" "$CADDY_PID" "$TMP/caddy.log" "http://127.0.0.1:$uport/"
	[[ $tport == - ]] || wait_200 "Caddy → tcp" "$CADDY_PID" "$TMP/caddy.log" "http://127.0.0.1:$tport/"
}

proxy_label() {
	case $1 in
	tandem/unix) echo "tandem → gunicorn (unix socket)" ;;
	nginx/unix) echo "nginx → gunicorn (unix socket)" ;;
	tandem/tcp) echo "tandem → gunicorn (127.0.0.1 TCP)" ;;
	nginx/tcp) echo "nginx → gunicorn (127.0.0.1 TCP)" ;;
	caddy/unix) echo "Caddy → gunicorn (unix socket)" ;;
	caddy/tcp) echo "Caddy → gunicorn (127.0.0.1 TCP)" ;;
	esac
}

proxy_main() {
	[[ $CADDY == 0 || $CADDY == 1 ]] || die "CADDY must be 0 or 1, got '$CADDY'"
	ensure_proxy_tools
	LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
	bench_init
	build_tandem || die "tandem does not build (./cmd/tandem)"
	RESULTS=$TMP/proxy.tsv
	: >"$RESULTS"
	REPEATED=0

	local v s r i n
	declare -A PORT
	local want_unix=- want_tcp=-
	for v in $VARIANTS; do
		case $v in
		unix | tcp) ;;
		*) die "unknown variant '$v' (VARIANTS: unix tcp)" ;;
		esac
		PORT[tandem/$v]=$(free_port)
		PORT[nginx/$v]=$(free_port)
		[[ $CADDY == 1 ]] && PORT[caddy/$v]=$(free_port)
	done
	[[ -n ${PORT[tandem/unix]:-} ]] && want_unix=1
	[[ -n ${PORT[tandem/tcp]:-} ]] && want_tcp=1

	log "== starting gunicorn ($WORKERS sync workers, unix socket + TCP), tandem, nginx$([[ $CADDY == 1 ]] && echo " and Caddy")"
	GUNICORN_PORT=$(free_port)
	start_gunicorn proxy hello:application --bind "127.0.0.1:$GUNICORN_PORT"
	wait_200 "gunicorn tcp" "$GUNICORN_PID" "$TMP/gunicorn-proxy.log" "http://127.0.0.1:$GUNICORN_PORT/"
	local tu=- tt=- nu=- nt=-
	[[ $want_unix == 1 ]] && tu=${PORT[tandem/unix]} nu=${PORT[nginx/unix]}
	[[ $want_tcp == 1 ]] && tt=${PORT[tandem/tcp]} nt=${PORT[nginx/tcp]}
	start_tandem_proxy "$tu" "$tt"
	start_nginx_keepalive "$nu" "$nt"
	ROOTS=("$TANDEM_PID" "$GUNICORN_PID" "$NGINX_PID")
	if [[ $CADDY == 1 ]]; then
		local cu=- ct=-
		[[ $want_unix == 1 ]] && cu=${PORT[caddy/unix]}
		[[ $want_tcp == 1 ]] && ct=${PORT[caddy/tcp]}
		start_caddy "$cu" "$ct"
		ROOTS+=("$CADDY_PID")
	fi

	local RUNS=()
	for v in $VARIANTS; do
		RUNS+=("tandem/$v" "nginx/$v")
		[[ $CADDY == 1 ]] && RUNS+=("caddy/$v")
	done
	for s in "${RUNS[@]}"; do
		check_body "$s" "http://127.0.0.1:${PORT[$s]}/" "$PROXY_BODY"
	done
	log "all of ${RUNS[*]} answer 200 with '$PROXY_BODY'"

	log "warm-up (1s each)"
	for s in "${RUNS[@]}"; do
		NOISE_MAX=100 run_wrk "$s warm-up" "http://127.0.0.1:${PORT[$s]}/" 1s "$CONNS" "$THREADS" "$TMP/wrk-${s/\//-}-warm.txt"
	done
	local py
	mapfile -t py < <(python_pids "$GUNICORN_PID")
	n=${#RUNS[@]}
	for ((r = 1; r <= ROUNDS; r++)); do
		for ((i = 0; i < n; i++)); do
			s=${RUNS[$(((i + r - 1) % n))]}
			case $s in
			tandem/*) FRONT=("$TANDEM_PID") ;;
			nginx/*) mapfile -t FRONT < <(tree_pids "$NGINX_PID") ;;
			caddy/*) mapfile -t FRONT < <(tree_pids "$CADDY_PID") ;;
			esac
			PYP=("${py[@]}")
			run_wrk "round $r $s" "http://127.0.0.1:${PORT[$s]}/" "$DUR" "$CONNS" "$THREADS" "$TMP/wrk-${s/\//-}-$r.txt"
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$r" "$WRK_RPS" "$WRK_P99" "$WRK_FOREIGN" "$FRONT_US" "$PY_US" >>"$RESULTS"
			log "$(printf 'round %s  %-11s %9s req/s  p99 %8s ms  CPU/req: front %6s us, gunicorn %6s us  other CPU %5s%%' \
				"$r" "$s" "$WRK_RPS" "$WRK_P99" "$FRONT_US" "$PY_US" "$WRK_FOREIGN")"
		done
	done
	for s in "${RUNS[@]}"; do
		check_body "$s" "http://127.0.0.1:${PORT[$s]}/" "$PROXY_BODY"
	done
	FRONT=() PYP=()
	proxy_report "${RUNS[@]}"
}

proxy_report() {
	local runs=("$@") cpu gunicorn_v nginx_v py_v wrk_v caddy_v="" noise s v
	cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
	gunicorn_v=$(gunicorn --version 2>&1 | awk '{print $NF}' | tr -d '()')
	nginx_v=$({ "$NGINX" -v 2>&1 || true; } | sed 's/^nginx version: //')
	py_v=$($PY -c 'import platform; print(platform.python_version())')
	wrk_v=$({ wrk -v 2>&1 || true; } | awk 'NR == 1 {print $2}')
	[[ $CADDY == 1 ]] && caddy_v=" · Caddy $(caddy version 2>&1 | awk 'NR == 1 {print $1}')"
	noise=$(noise_summary 5)

	cat <<EOF
### Reverse proxy: tandem → gunicorn vs nginx → gunicorn$([[ $CADDY == 1 ]] && echo " (and Caddy)")

$(date -u '+%Y-%m-%d %H:%M UTC') · $(nproc) CPUs (${cpu}) · $(go version | awk '{print $3}') · Python ${py_v} · gunicorn ${gunicorn_v} · ${nginx_v}${caddy_v} · wrk ${wrk_v} · load average before: ${LOAD_BEFORE}

\`DURATION=$DUR ROUNDS=$ROUNDS CONNS=$CONNS THREADS=$THREADS WORKERS=$WORKERS CADDY=$CADDY bash bench/proxy.sh\` — one gunicorn (sync, $WORKERS workers, hello world from bench/apps/hello.py) on a unix socket and TCP; \`wrk -t$THREADS -c$CONNS -d$DUR --latency\` with keep-alive; medians of $ROUNDS rounds (runs alternate, the first rotates each round).
CPU used by other processes during the runs: $noise of the machine; runs repeated for exceeding ${NOISE_MAX}%: ${REPEATED}.

| front end → upstream | req/s (median) | req/s range | p99 (median) | front-end CPU/req | gunicorn CPU/req |
|---|--:|--:|--:|--:|--:|
EOF
	declare -A RPS P99
	for s in "${runs[@]}"; do
		RPS[$s]=$(median "$RESULTS" "$s" 3)
		P99[$s]=$(median "$RESULTS" "$s" 4)
		printf '| %s | %s | %s | %s ms | %s µs | %s µs |\n' "$(proxy_label "$s")" \
			"$(fmt "${RPS[$s]}" 0)" \
			"$(awk -F'\t' -v k="$s" '$1 == k { if (n++ == 0 || $3 < lo) lo = $3; if ($3 > hi) hi = $3 } END { printf "%.0f–%.0f", lo, hi }' "$RESULTS")" \
			"$(fmt "${P99[$s]}" 2)" "$(fmt "$(median "$RESULTS" "$s" 6)" 1)" "$(fmt "$(median "$RESULTS" "$s" 7)" 1)"
	done
	local head="| upstream transport | tandem / nginx req/s | tandem / nginx p99 (lower is better) |"
	local rule="|---|--:|--:|"
	if [[ $CADDY == 1 ]]; then
		head+=" tandem / Caddy req/s | Caddy / nginx req/s |"
		rule+="--:|--:|"
	fi
	printf '\n%s\n%s\n' "$head" "$rule"
	for v in $VARIANTS; do
		printf '| %s | %s | %s |' "$v" "$(ratio "${RPS[tandem/$v]}" "${RPS[nginx/$v]}")" \
			"$(ratio "${P99[tandem/$v]}" "${P99[nginx/$v]}")"
		[[ $CADDY == 1 ]] && printf ' %s | %s |' "$(ratio "${RPS[tandem/$v]}" "${RPS[caddy/$v]}")" \
			"$(ratio "${RPS[caddy/$v]}" "${RPS[nginx/$v]}")"
		printf '\n'
	done
	if [[ -f $TMP/socket-errors ]]; then
		printf '\nwrk socket errors:\n\n'
		sed 's/^/    /' "$TMP/socket-errors"
	fi
	cat <<EOF

<details><summary>All runs</summary>

| front end/transport | round | req/s | p99 ms | other CPU % | front end µs/req | gunicorn µs/req |
|---|--:|--:|--:|--:|--:|--:|
$(awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7}' "$RESULTS")

</details>
EOF
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	proxy_main "$@"
fi
