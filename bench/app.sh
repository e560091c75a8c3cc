#!/usr/bin/env bash
# App-server benchmark: tandem vs nginx → gunicorn vs nginx → uWSGI.
#
#   bash bench/app.sh                     # defaults: DUR=5s ROUNDS=3 CONNS=32
#   DUR=10s ROUNDS=5 bash bench/app.sh
#
# For a hello-world WSGI app (stdlib, 13 bytes) and a Flask app, every
# server runs the same app with the same number of workers:
#   tandem   `app` block, preload on, WORKERS workers
#   gunicorn nginx (worker_processes = cores) → proxy_pass http://unix:SOCK
#            → gunicorn, sync workers
#   uwsgi    nginx → uwsgi_pass unix:SOCK → uWSGI --master --processes N
# The servers alternate within each round (the first one rotates); the
# tables show medians. Then: the in-process ceiling (the app called in a
# Python loop, bench/inprocess/ceiling.py) and the idle memory (PSS) of the
# Flask pool with preload on/off, next to gunicorn's and uWSGI's.
#
# Everything runs on 127.0.0.1 with free ports and sockets in a throwaway
# directory, killed and removed on exit (KEEP=1 keeps it). Markdown goes to
# stdout, progress to stderr: `bash bench/app.sh > app-results.md`.
#
# Knobs (environment):
#   DUR        wrk duration per run                         (default 5s)
#   ROUNDS     rounds; every server runs once per round     (default 3)
#   CONNS      wrk connections                              (default 32)
#   THREADS    wrk threads                                  (default 2)
#   WORKERS    Python workers for every server              (default 4)
#   APPS       which apps: "hello flask"                    (default both)
#   CEIL_SECS  seconds per in-process ceiling measurement   (default 3)
#   NOISE_MAX  % of all CPU other processes may use during a run before it
#              is repeated (at most twice)                  (default 10)
#   NOISE_BUDGET seconds the whole run may spend waiting for an idle
#              machine and repeating noisy runs             (default 120)
#   SKIP_MEM   set to 1 to skip the memory measurement
#   TANDEM_BIN use this tandem binary instead of building ./cmd/tandem
#   KEEP       set to 1 to keep the temp dir (configs, logs, wrk output)
#
# bench/fairness.sh sources this file for its server start-up helpers; the
# benchmark itself only runs when the file is executed.
set -euo pipefail

DUR=${DUR:-5s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-4}
APPS=${APPS:-hello flask}
CEIL_SECS=${CEIL_SECS:-3}
NOISE_MAX=${NOISE_MAX:-10}
NOISE_BUDGET=${NOISE_BUDGET:-120}
SKIP_MEM=${SKIP_MEM:-0}
KEEP=${KEEP:-0}
PY=/usr/bin/python3

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

APPS_DIR=$BENCH_REPO/bench/apps

# ---------------------------------------------------------------- tools

# ensure_app_tools installs what the app benchmarks need. Debian's
# python3-flask and uWSGI's python3 plugin are packages, not commands, so
# they are checked here; lib.sh's ensure_tools does the commands (and finds
# go and nginx).
ensure_app_tools() {
	local debs=()
	[[ -x $PY ]] || debs+=(python3)
	[[ -x $PY ]] && $PY -c 'import flask' 2>/dev/null || debs+=(python3-flask)
	[[ -e /usr/lib/uwsgi/plugins/python3_plugin.so ]] || debs+=(uwsgi-plugin-python3)
	command -v gunicorn >/dev/null || debs+=(gunicorn)
	command -v uwsgi >/dev/null || debs+=(uwsgi)
	if ((${#debs[@]})); then apt_install "${debs[@]}"; fi
	ensure_tools nginx:nginx-light wrk:wrk curl:curl
}

# ---------------------------------------------------------------- processes

# stop_server PID: stop one server (and its workers) now, not at exit, so
# the next app's servers run on an otherwise idle machine.
stop_server() {
	local pid=$1 p keep=()
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

# tree_pids PID: PID and all its descendants (workers, zygotes, nginx
# workers), one per line.
tree_pids() {
	ps -e -o pid=,ppid= | awk -v root="$1" '
		{ parent[$1] = $2 }
		END {
			for (p in parent) {
				q = p
				while (q != "" && q != 0 && q != 1) { if (q == root) { print p; break }; q = parent[q] }
			}
		}'
}

# wait_200 NAME PID LOG CURL-ARGS...: poll until the request answers 200
# (a proxy answers 502 while its backend starts, so "answers at all" is not
# enough here).
wait_200() {
	local name=$1 pid=$2 logf=$3
	shift 3
	local deadline=$((SECONDS + 30)) code
	while :; do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@" || true)
		[[ $code == 200 ]] && return
		if ! kill -0 "$pid" 2>/dev/null; then
			log "--- $logf"
			tail -n 30 "$logf" >&2 || true
			die "$name exited during start-up"
		fi
		((SECONDS < deadline)) || { tail -n 30 "$logf" >&2; die "$name did not answer 200 within 30s (last: $code)"; }
		sleep 0.1
	done
}

# check_body NAME URL WANT: the server must answer 200 with exactly WANT, so
# an error page can never be benchmarked as speed.
check_body() {
	local name=$1 url=$2 want=$3 out code
	out=$TMP/check.body
	code=$(curl -s -o "$out" -w '%{http_code}' "$url")
	[[ $code == 200 ]] || die "$name $url: status $code, want 200"
	[[ $(<"$out") == "$want" ]] || die "$name $url: body $(head -c 200 "$out" | od -c | head -3), want '$want'"
	rm -f "$out"
}

# wait_workers NAME LOG PATTERN N: wait until the log has N lines matching
# PATTERN (each server logs its workers' start), so memory is measured on a
# complete pool.
wait_workers() {
	local name=$1 logf=$2 pat=$3 n=$4 deadline=$((SECONDS + 30))
	until (($(grep -c -- "$pat" "$logf" || true) >= n)); do
		((SECONDS < deadline)) || { tail -n 30 "$logf" >&2; die "$name: $n workers did not start within 30s"; }
		sleep 0.1
	done
}

# ---------------------------------------------------------------- servers

# start_tandem_app TAG PORT MODULE:CALLABLE PRELOAD: tandem with one app
# block and one site sending everything to it. Sets TANDEM_PID.
start_tandem_app() {
	local tag=$1 port=$2 wsgi=$3 preload=$4
	cat >"$TMP/tandem-$tag.conf" <<EOF
pid_file $TMP/tandem-$tag.pid;
access_log off;
app bench {
	wsgi $wsgi;
	chdir $APPS_DIR;
	workers $WORKERS;
	preload $preload;
}
site _ {
	listen 127.0.0.1:$port default;
	location / { app bench; }
}
EOF
	start_bg "$TMP/tandem-$tag.log" "$TMP/tandem" run -c "$TMP/tandem-$tag.conf"
	TANDEM_PID=$LAST_PID
	wait_200 tandem "$TANDEM_PID" "$TMP/tandem-$tag.log" "http://127.0.0.1:$port/"
}

# start_gunicorn TAG MODULE:CALLABLE [EXTRA-ARGS...]: gunicorn as its docs
# deploy it behind nginx: sync workers (the default class) on a unix socket,
# no access log (the default). Sets GUNICORN_PID and GUNICORN_SOCK.
start_gunicorn() {
	local tag=$1 wsgi=$2
	shift 2
	GUNICORN_SOCK=$TMP/gunicorn-$tag.sock
	start_bg "$TMP/gunicorn-$tag.log" gunicorn --workers "$WORKERS" --worker-class sync \
		--bind "unix:$GUNICORN_SOCK" --chdir "$APPS_DIR" "$@" "$wsgi"
	GUNICORN_PID=$LAST_PID
	wait_200 gunicorn "$GUNICORN_PID" "$TMP/gunicorn-$tag.log" --unix-socket "$GUNICORN_SOCK" http://localhost/
}

# start_uwsgi TAG MODULE:CALLABLE: uWSGI the usual way behind nginx
# (uwsgi protocol on a unix socket, master + N processes; uWSGI imports the
# app in the master and forks, like preload). Debian's uWSGI reloads on
# SIGTERM; --die-on-term makes SIGTERM (our cleanup) stop it. Sets UWSGI_PID
# and UWSGI_SOCK. Readiness is checked through nginx, which speaks uwsgi.
start_uwsgi() {
	local tag=$1 wsgi=$2
	UWSGI_SOCK=$TMP/uwsgi-$tag.sock
	start_bg "$TMP/uwsgi-$tag.log" uwsgi --plugin python3 --master --processes "$WORKERS" \
		--socket "$UWSGI_SOCK" --chdir "$APPS_DIR" --module "$wsgi" --need-app \
		--die-on-term --disable-logging
	UWSGI_PID=$LAST_PID
}

# start_nginx_proxy TAG GUNICORN_PORT UWSGI_PORT: one nginx, one server
# block per backend ("-" leaves a backend out). The gunicorn block is
# gunicorn's documented nginx config (HTTP/1.0 to the upstream, a new
# connection per request: gunicorn's sync workers close after each response,
# so upstream keepalive is not possible); the uWSGI block is uWSGI's
# documented one (uwsgi_params + uwsgi_pass; the uwsgi protocol has no
# keepalive either). Client-side keep-alive as static.sh's nginx. Sets
# NGINX_PID and waits until each block answers 200 through its backend.
start_nginx_proxy() {
	local tag=$1 gport=$2 uport=$3
	{
		nginx_head "nginx-$tag"
		if [[ $gport != - ]]; then
			cat <<EOF
	upstream gunicorn { server unix:$GUNICORN_SOCK fail_timeout=0; }
	server {
		listen 127.0.0.1:$gport;
		location / {
			proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto \$scheme;
			proxy_set_header Host \$http_host;
			proxy_redirect off;
			proxy_pass http://gunicorn;
		}
	}
EOF
		fi
		if [[ $uport != - ]]; then
			cat <<EOF
	server {
		listen 127.0.0.1:$uport;
		location / {
			include /etc/nginx/uwsgi_params;
			uwsgi_pass unix:$UWSGI_SOCK;
		}
	}
EOF
		fi
		echo "}"
	} >"$TMP/nginx-$tag.conf"
	start_bg "$TMP/nginx-$tag.out" "$NGINX" -p "$TMP" -c "$TMP/nginx-$tag.conf"
	NGINX_PID=$LAST_PID
	if [[ $gport != - ]]; then
		wait_200 "nginx → gunicorn" "$NGINX_PID" "$TMP/nginx-$tag-error.log" "http://127.0.0.1:$gport/"
	fi
	if [[ $uport != - ]]; then
		wait_200 "nginx → uwsgi" "$UWSGI_PID" "$TMP/uwsgi-$tag.log" "http://127.0.0.1:$uport/"
	fi
}

# ---------------------------------------------------------------- wrk + noise
#
# The machine may be shared, so before each run wait for it to be idle, and
# measure the CPU used during the run by processes that are neither the
# servers (and their workers) nor wrk. Runs above NOISE_MAX % of the machine
# are repeated (at most twice, within NOISE_BUDGET) and the share is
# reported with every run (measure_wrk in lib.sh, as every benchmark here).

noise_init
# our_ticks ROOT...: utime+stime of the server trees and ksoftirqd (loopback
# packet processing done on our behalf).
our_ticks() {
	local r pids=()
	for r in "$@"; do mapfile -t -O "${#pids[@]}" pids < <(tree_pids "$r"); done
	mapfile -t -O "${#pids[@]}" pids < <(pgrep '^ksoftirqd/' || true)
	proc_ticks "${pids[@]}"
}

# app_ticks: for measure_wrk, everything counted as ours (the trees in
# ROOTS and ksoftirqd), then the front end's (FRONT) and the Python
# processes' (PYP) ticks.
app_ticks() {
	echo "$(our_ticks "${ROOTS[@]}") $(proc_ticks "${FRONT[@]}") $(proc_ticks "${PYP[@]}")"
}

# run_wrk LABEL URL DURATION CONNS THREADS OUT: one wrk run with lib.sh's
# noise accounting, for the server trees in ROOTS (a caller that runs it
# with NOISE_MAX=100 gets no waiting and no repeats). Sets WRK_RPS, WRK_P99 (ms) and WRK_FOREIGN
# (%). Non-2xx answers abort the benchmark. When FRONT (the HTTP front end:
# tandem's Go process, or nginx's master + workers) and PYP (the server's
# Python processes) are set, also sets FRONT_US and PY_US: CPU microseconds
# per request spent in each.
ROOTS=()
FRONT=()
PYP=()
run_wrk() {
	local label=$1 url=$2 dur=$3 conns=$4 threads=$5 out=$6
	measure_wrk "$label" "$out" run app_ticks \
		-t"$threads" -c"$conns" -d"$dur" --timeout 10s --latency "$url"
	FRONT_US=$(us_per_req "${WRK_TICKS[1]}") PY_US=$(us_per_req "${WRK_TICKS[2]}")
}

# median FILE KEY COLUMN: median of COLUMN over the rows whose first field
# is KEY (tab-separated).
median() {
	awk -F'\t' -v k="$2" -v c="$3" '$1 == k {print $c}' "$1" | median_of
}

# pss_kib PID...: summed Pss of the processes, in KiB, from smaps_rollup.
pss_kib() {
	local p t=0 v
	for p in "$@"; do
		v=$(awk '/^Pss:/ {print $2; exit}' "/proc/$p/smaps_rollup" 2>/dev/null || true)
		t=$((t + ${v:-0}))
	done
	echo "$t"
}
# python_pids ROOT: the Python processes in ROOT's tree (zygote, workers;
# the gunicorn/uWSGI master is Python too and counts).
python_pids() {
	local p exe
	for p in $(tree_pids "$1"); do
		exe=$(readlink "/proc/$p/exe" 2>/dev/null || true)
		[[ $exe == */python3* || $exe == */uwsgi* ]] && echo "$p"
	done
	return 0
}

# ================================================================= main

app_main() {
	ensure_app_tools
	LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
	bench_init
	build_tandem || die "tandem does not build (./cmd/tandem)"

	declare -A WSGI=([hello]=hello:application [flask]=flaskapp:app)
	declare -A BODY=([hello]="Hello, World!" [flask]="Hello from Flask under tandem")
	declare -A LABEL=([hello]="hello world (stdlib)" [flask]="Flask")
	local SERVERS=(tandem gunicorn uwsgi)
	RESULTS=$TMP/results.tsv
	: >"$RESULTS"
	REPEATED=0

	local app s r i n port
	declare -A PORT
	for app in $APPS; do
		[[ -n ${WSGI[$app]:-} ]] || die "unknown app '$app' (APPS: hello flask)"
		log "== $app: starting tandem, gunicorn, uWSGI and nginx ($WORKERS workers each)"
		for s in "${SERVERS[@]}"; do PORT[$s]=$(free_port); done
		start_tandem_app "$app" "${PORT[tandem]}" "${WSGI[$app]}" on
		start_gunicorn "$app" "${WSGI[$app]}"
		start_uwsgi "$app" "${WSGI[$app]}"
		start_nginx_proxy "$app" "${PORT[gunicorn]}" "${PORT[uwsgi]}"
		ROOTS=("$TANDEM_PID" "$GUNICORN_PID" "$UWSGI_PID" "$NGINX_PID")

		for s in "${SERVERS[@]}"; do
			check_body "$s" "http://127.0.0.1:${PORT[$s]}/" "${BODY[$app]}"
		done
		log "all three answer 200 with '${BODY[$app]}'"

		log "warm-up (1s each)"
		for s in "${SERVERS[@]}"; do
			# Not measured, so never repeated for noise.
			NOISE_MAX=100 run_wrk "$app/$s warm-up" "http://127.0.0.1:${PORT[$s]}/" 1s "$CONNS" "$THREADS" "$TMP/wrk-$app-$s-warm.txt"
		done
		n=${#SERVERS[@]}
		for ((r = 1; r <= ROUNDS; r++)); do
			for ((i = 0; i < n; i++)); do
				s=${SERVERS[$(((i + r - 1) % n))]}
				case $s in
				tandem) FRONT=("$TANDEM_PID") && mapfile -t PYP < <(python_pids "$TANDEM_PID") ;;
				gunicorn) mapfile -t FRONT < <(tree_pids "$NGINX_PID") && mapfile -t PYP < <(python_pids "$GUNICORN_PID") ;;
				uwsgi) mapfile -t FRONT < <(tree_pids "$NGINX_PID") && mapfile -t PYP < <(python_pids "$UWSGI_PID") ;;
				esac
				run_wrk "round $r $app/$s" "http://127.0.0.1:${PORT[$s]}/" "$DUR" "$CONNS" "$THREADS" "$TMP/wrk-$app-$s-$r.txt"
				printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$app/$s" "$r" "$WRK_RPS" "$WRK_P99" "$WRK_FOREIGN" "$FRONT_US" "$PY_US" >>"$RESULTS"
				log "$(printf 'round %s  %-6s %-9s %9s req/s  p99 %8s ms  CPU/req: front %6s us, Python %6s us  other CPU %5s%%' "$r" "$app" "$s" "$WRK_RPS" "$WRK_P99" "$FRONT_US" "$PY_US" "$WRK_FOREIGN")"
			done
		done
		# The answer must still be right after the load.
		for s in "${SERVERS[@]}"; do
			check_body "$s" "http://127.0.0.1:${PORT[$s]}/" "${BODY[$app]}"
		done
		FRONT=() PYP=()
		stop_server "$NGINX_PID"
		stop_server "$UWSGI_PID"
		stop_server "$GUNICORN_PID"
		stop_server "$TANDEM_PID"
	done

	# ---------------------------------------------------------- ceiling
	declare -A CEIL
	for app in $APPS; do
		log "== in-process ceiling: $app (${CEIL_SECS}s, 1 process)"
		wait_quiet
		CEIL[$app]=$($PY "$BENCH_REPO/bench/inprocess/ceiling.py" "$APPS_DIR" "${WSGI[$app]}" "$CEIL_SECS" | awk '{print $1}')
		log "$app: ${CEIL[$app]} req/s in one process"
	done

	# ---------------------------------------------------------- memory
	# Idle PSS of the Flask pool: right after start (all workers up, 2 s to
	# settle) and again after 2 s of load, which touches every worker (reference
	# counting writes to shared pages, so copy-on-write sharing shrinks).
	declare -A MEM0 MEM1 MEMX
	local MEMS=(tandem-preload tandem-nopreload gunicorn gunicorn-preload uwsgi)
	if [[ $SKIP_MEM != 1 ]]; then
		local root py
		for s in "${MEMS[@]}"; do
			log "== memory: $s"
			port=$(free_port)
			case $s in
			tandem-preload | tandem-nopreload)
				local pl=on
				[[ $s == tandem-nopreload ]] && pl=off
				start_tandem_app "mem-$s" "$port" flaskapp:app "$pl"
				root=$TANDEM_PID
				wait_workers tandem "$TMP/tandem-mem-$s.log" 'app generation serving' 1
				;;
			gunicorn | gunicorn-preload)
				local gargs=()
				[[ $s == gunicorn-preload ]] && gargs=(--preload)
				start_gunicorn "mem-$s" flaskapp:app "${gargs[@]}"
				root=$GUNICORN_PID
				wait_workers gunicorn "$TMP/gunicorn-mem-$s.log" 'Booting worker' "$WORKERS"
				start_nginx_proxy "mem-$s" "$port" -
				;;
			uwsgi)
				start_uwsgi "mem-$s" flaskapp:app
				root=$UWSGI_PID
				start_nginx_proxy "mem-$s" - "$port"
				wait_workers uwsgi "$TMP/uwsgi-mem-$s.log" 'spawned uWSGI worker' "$WORKERS"
				;;
			esac
			check_body "$s" "http://127.0.0.1:$port/" "${BODY[flask]}"
			sleep 2
			mapfile -t py < <(python_pids "$root")
			local nproc_expect=$((WORKERS + 1))
			[[ $s == tandem-nopreload ]] && nproc_expect=$WORKERS
			((${#py[@]} >= nproc_expect)) || die "$s: found ${#py[@]} Python processes (${py[*]}), want $nproc_expect"
			MEMX[$s]=${#py[@]}
			MEM0[$s]=$(pss_kib "${py[@]}")
			wrk -t2 -c8 -d2s "http://127.0.0.1:$port/" >"$TMP/wrk-mem-$s.txt" 2>&1
			! grep -q 'Non-2xx' "$TMP/wrk-mem-$s.txt" || die "$s: non-2xx under load"
			sleep 1
			mapfile -t py < <(python_pids "$root")
			MEM1[$s]=$(pss_kib "${py[@]}")
			if [[ $s == tandem-* ]]; then
				MEMX[$s.go]=$(pss_kib "$root")
			fi
			log "$s: ${MEMX[$s]} Python processes, PSS ${MEM0[$s]} KiB idle, ${MEM1[$s]} KiB after load"
			[[ $s == tandem-* ]] || stop_server "$NGINX_PID"
			stop_server "$root"
		done
	fi

	report
}

report() {
	local cpu gunicorn_v uwsgi_v nginx_v flask_v py_v wrk_v app s
	cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
	gunicorn_v=$(gunicorn --version 2>&1 | awk '{print $NF}' | tr -d '()')
	uwsgi_v=$(uwsgi --version 2>&1)
	nginx_v=$({ "$NGINX" -v 2>&1 || true; } | sed 's/^nginx version: //')
	flask_v=$($PY -c 'import flask, werkzeug; print(flask.__version__, "/ Werkzeug", werkzeug.__version__)' 2>/dev/null || echo "?")
	py_v=$($PY -c 'import platform; print(platform.python_version())')
	wrk_v=$({ wrk -v 2>&1 || true; } | awk 'NR == 1 {print $2}')
	local noise
	noise=$(noise_summary 5)

	cat <<EOF
### App server: tandem vs nginx → gunicorn vs nginx → uWSGI

$(date -u '+%Y-%m-%d %H:%M UTC') · $(nproc) CPUs (${cpu}) · $(go version | awk '{print $3}') · Python ${py_v} · gunicorn ${gunicorn_v} · uWSGI ${uwsgi_v} · ${nginx_v} · Flask ${flask_v} · wrk ${wrk_v} · load average before: ${LOAD_BEFORE}

\`DUR=$DUR ROUNDS=$ROUNDS CONNS=$CONNS THREADS=$THREADS WORKERS=$WORKERS bash bench/app.sh\` — $WORKERS workers per server, \`wrk -t$THREADS -c$CONNS -d$DUR --latency\`, medians of $ROUNDS rounds (servers alternate, the first rotates each round).
CPU used by other processes during the runs: $noise of the machine; runs repeated for exceeding ${NOISE_MAX}%: ${REPEATED}.

| app | server | req/s (median) | req/s range | p99 (median) |
|---|---|--:|--:|--:|
EOF
	declare -A RPS P99
	for app in $APPS; do
		for s in tandem gunicorn uwsgi; do
			RPS[$app/$s]=$(median "$RESULTS" "$app/$s" 3)
			P99[$app/$s]=$(median "$RESULTS" "$app/$s" 4)
			printf '| %s | %s | %s | %s | %s ms |\n' "${LABEL[$app]}" "$(server_label "$s")" \
				"$(fmt "${RPS[$app/$s]}" 0)" \
				"$(awk -F'\t' -v k="$app/$s" '$1 == k { if (n++ == 0 || $3 < lo) lo = $3; if ($3 > hi) hi = $3 } END { printf "%.0f–%.0f", lo, hi }' "$RESULTS")" \
				"$(fmt "${P99[$app/$s]}" 2)"
		done
	done
	cat <<EOF

| app | tandem / gunicorn (target ≥ 1.5) | tandem / uWSGI (target ≥ 1.1) | in-process ceiling, 1 process | ideal for $(nproc) cores (× $(nproc)) | tandem / ideal |
|---|--:|--:|--:|--:|--:|
EOF
	for app in $APPS; do
		local ideal
		ideal=$(awk -v c="${CEIL[$app]}" -v n="$(nproc)" 'BEGIN { print c * n }')
		printf '| %s | %s | %s | %s req/s | %s req/s | %s%% |\n' "${LABEL[$app]}" \
			"$(ratio "${RPS[$app/tandem]}" "${RPS[$app/gunicorn]}")" \
			"$(ratio "${RPS[$app/tandem]}" "${RPS[$app/uwsgi]}")" \
			"$(fmt "${CEIL[$app]}" 0)" "$(fmt "$ideal" 0)" \
			"$(awk -v a="${RPS[$app/tandem]}" -v b="$ideal" 'BEGIN { printf "%.1f", a / b * 100 }')"
	done

	cat <<EOF

CPU time per request (medians; from /proc/PID/stat utime+stime over each run, divided by the requests wrk counted). "Front end" is tandem's Go process, or nginx's master and workers; "Python" is every Python process of the server (tandem's zygote and workers; gunicorn's or uWSGI's master and workers). wrk and the kernel's softirq work charged to no process are not included.

| app | server | front end | Python | total |
|---|---|--:|--:|--:|
EOF
	for app in $APPS; do
		for s in tandem gunicorn uwsgi; do
			local fu pu
			fu=$(median "$RESULTS" "$app/$s" 6)
			pu=$(median "$RESULTS" "$app/$s" 7)
			printf '| %s | %s | %s µs | %s µs | %s µs |\n' "${LABEL[$app]}" "$(server_label "$s")" \
				"$(fmt "$fu" 1)" "$(fmt "$pu" 1)" "$(awk -v a="$fu" -v b="$pu" 'BEGIN { printf "%.1f", a + b }')"
		done
	done

	if [[ $SKIP_MEM != 1 ]]; then
		cat <<EOF

Idle memory of the Flask pool, $WORKERS workers: PSS summed over the Python processes of each server (/proc/PID/smaps_rollup) — right after start (all workers up, 2 s to settle), and after 2 s of \`wrk -c8\` that reached every worker.

| server | Python processes | PSS idle | PSS after load | not counted |
|---|--:|--:|--:|---|
EOF
		for s in "${MEMS[@]}"; do
			local extra="—"
			[[ $s == tandem-* ]] && extra="tandem's Go process: $(awk -v k="${MEMX[$s.go]}" 'BEGIN { printf "%.1f", k / 1024 }') MiB"
			[[ $s == gunicorn* || $s == uwsgi ]] && extra="nginx"
			printf '| %s | %s | %s MiB | %s MiB | %s |\n' "$(server_label "mem:$s")" "${MEMX[$s]}" \
				"$(awk -v k="${MEM0[$s]}" 'BEGIN { printf "%.1f", k / 1024 }')" \
				"$(awk -v k="${MEM1[$s]}" 'BEGIN { printf "%.1f", k / 1024 }')" "$extra"
		done
	fi

	if [[ -f $TMP/socket-errors ]]; then
		printf '\nwrk socket errors:\n\n'
		sed 's/^/    /' "$TMP/socket-errors"
	fi

	cat <<EOF

<details><summary>All runs</summary>

| app/server | round | req/s | p99 ms | other CPU % | front end µs/req | Python µs/req |
|---|--:|--:|--:|--:|--:|--:|
$(awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7}' "$RESULTS")

</details>
EOF
}

server_label() {
	case $1 in
	tandem) echo "tandem (preload on)" ;;
	gunicorn) echo "nginx → gunicorn sync (unix socket)" ;;
	uwsgi) echo "nginx → uWSGI (uwsgi_pass, unix socket)" ;;
	mem:tandem-preload) echo "tandem, preload on (zygote + workers)" ;;
	mem:tandem-nopreload) echo "tandem, preload off (workers)" ;;
	mem:gunicorn) echo "gunicorn, default (master + workers)" ;;
	mem:gunicorn-preload) echo "gunicorn --preload (master + workers)" ;;
	mem:uwsgi) echo "uWSGI (master + workers; imports in the master)" ;;
	esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	app_main "$@"
fi
