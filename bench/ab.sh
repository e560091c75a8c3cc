#!/usr/bin/env bash
# Side by side: two tandem variants on one workload, in alternating rounds
# of the same run.
#
#   A_BIN=/tmp/tandem-old B_BIN=/tmp/tandem-new bash bench/ab.sh
#   B_ENV="TANDEM_TIMER_SLACK=off" bash bench/ab.sh   # one build, two environments
#   WORKLOAD=proxy ROUNDS=12 bash bench/ab.sh
#
# Why: on the shared 2-vCPU VMs this project is measured on, the machine's
# own speed drifts by 10–20 % within minutes, so two runs of bench/app.sh
# or bench/proxy.sh cannot show a change of a few percent. Here each round
# runs A then B (B then A the next round), so drift hits both alike; the
# report gives medians, the rounds B won, and CPU per request.
#
# Each run starts its tandem afresh and stops it afterwards. A tandem kept
# up across rounds keeps whatever placement of its threads on the cores it
# started with, and that alone made one of two identical tandems 10–20 %
# faster than the other for several rounds in a row (an A/A run).
#
# Everything runs from this script's session. With autogroup scheduling
# (/proc/sys/kernel/sched_autogroup_enabled = 1), the kernel shares CPU
# between sessions first and threads second: a server started by hand with
# setsid, next to a wrk started from a shell, gets a share per session. A
# hand-run comparison done that way put nginx → uWSGI 25 % below what
# bench/app.sh measured minutes later.
#
# Workloads (WORKERS workers in each, the same for A and B):
#   hello   an `app` block running bench/apps/hello.py (13-byte body)
#   flask   an `app` block running bench/apps/flaskapp.py
#   proxy   `proxy unix:SOCK;` to one gunicorn (sync workers, hello.py) that
#           both variants share
#   proxy-tcp  the same over `proxy http://127.0.0.1:PORT;`
#   static  `root DIR;`, a 1 KiB file (the docroot of bench/static.sh)
#
# Knobs (environment):
#   WORKLOAD      hello | flask | proxy | proxy-tcp | static   (default flask)
#   A_BIN, B_BIN  tandem binaries; unset: ./cmd/tandem, built once for both
#   A_ENV, B_ENV  space-separated NAME=VALUE pairs for that variant
#   A_HOOK, B_HOOK  a shell command run once that variant's tandem answers,
#                 with TANDEM_PID set (to renice or chrt its workers, say)
#   ROUNDS        rounds; each runs both variants once          (default 8)
#   DUR           wrk duration per run                           (default 4s)
#   CONNS, THREADS, WORKERS, NOISE_MAX, NOISE_BUDGET, KEEP   as bench/app.sh
#
# Markdown goes to stdout, progress to stderr.
set -euo pipefail

WORKLOAD=${WORKLOAD:-flask}
ROUNDS=${ROUNDS:-8}
DUR=${DUR:-4s}
A_ENV=${A_ENV:-}
B_ENV=${B_ENV:-}

# app.sh brings lib.sh, the server helpers and the measuring helpers;
# sourcing it does not run its benchmark.
# shellcheck source=bench/app.sh
. "$(dirname "${BASH_SOURCE[0]}")/app.sh"

# start_variant V BIN ENV PORT: a tandem serving WORKLOAD on PORT, with ENV
# added to its environment. Sets PID_$V.
start_variant() {
	local v=$1 bin=$2 env=$3 port=$4 conf=$TMP/tandem-$1.conf handler
	case $WORKLOAD in
	hello | flask)
		cat >"$conf" <<EOF
pid_file $TMP/tandem-$v.pid;
access_log off;
app bench {
	wsgi ${WSGI[$WORKLOAD]};
	chdir $APPS_DIR;
	workers $WORKERS;
}
EOF
		handler="app bench;"
		;;
	*)
		printf 'pid_file %s;\naccess_log off;\n' "$TMP/tandem-$v.pid" >"$conf"
		case $WORKLOAD in
		proxy) handler="proxy unix:$GUNICORN_SOCK;" ;;
		proxy-tcp) handler="proxy http://127.0.0.1:$GUNICORN_PORT;" ;;
		static) handler="root $DOCROOT;" ;;
		esac
		;;
	esac
	cat >>"$conf" <<EOF
site _ {
	listen 127.0.0.1:$port default;
	location / { $handler }
}
EOF
	local envv=()
	[[ -n $env ]] && read -r -a envv <<<"$env"
	start_bg "$TMP/tandem-$v.log" env "${envv[@]}" "$bin" run -c "$conf"
	printf -v "PID_$v" %s "$LAST_PID"
	wait_200 "tandem $v" "$LAST_PID" "$TMP/tandem-$v.log" "http://127.0.0.1:$port$URL_PATH"
	if [[ $WORKLOAD == static ]]; then
		check_file "tandem $v" "http://127.0.0.1:$port$URL_PATH" 1024 "$DOCROOT/1k.bin"
	else
		check_body "tandem $v" "http://127.0.0.1:$port/" "${BODY[$WORKLOAD]}"
	fi
}

idle_ticks() { awk '/^cpu / {print $5 + $6; exit}' /proc/stat; }

# measure V ROUND: one wrk run against variant V; appends a row to $RESULTS.
measure() {
	local v=$1 round=$2 port pid back=() out=$TMP/wrk-$1-$2.txt f0 f1 b0 b1 i0 i1 t0 t1 nreq
	port=$(free_port)
	start_variant "$v" "${BIN[$v]}" "${ENVS[$v]}" "$port"
	pid=PID_$v
	pid=${!pid}
	if [[ -n ${HOOKS[$v]} ]]; then
		TANDEM_PID=$pid bash -c "${HOOKS[$v]}" >&2 || die "$v: hook failed: ${HOOKS[$v]}"
	fi
	# A short unmeasured load first: Python workers import lazily, caches fill.
	wrk -t"$THREADS" -c"$CONNS" -d1s "http://127.0.0.1:$port$URL_PATH" >/dev/null 2>&1 || true
	if [[ $WORKLOAD == proxy* ]]; then
		mapfile -t back < <(tree_pids "$GUNICORN_PID")
	elif [[ $WORKLOAD == static ]]; then
		back=()
	else
		mapfile -t back < <(python_pids "$pid")
	fi
	wait_quiet
	f0=$(proc_ticks "$pid") b0=$(proc_ticks "${back[@]}") i0=$(idle_ticks) t0=$(now_ms)
	wrk -t"$THREADS" -c"$CONNS" -d"$DUR" --timeout 10s --latency "http://127.0.0.1:$port$URL_PATH" >"$out" 2>&1 ||
		{ cat "$out" >&2; die "wrk failed against $v"; }
	# Idle is read before the per-process counters, whose sed and awk
	# forks would otherwise count as busy time of the run.
	i1=$(idle_ticks) t1=$(now_ms)
	f1=$(proc_ticks "$pid") b1=$(proc_ticks "${back[@]}")
	if grep -q 'Non-2xx or 3xx' "$out"; then
		cat "$out" >&2
		die "$v: wrk saw non-2xx responses"
	fi
	stop_server "$pid"
	nreq=$(awk '/requests in/ {print $1; exit}' "$out")
	[[ -n $nreq ]] || { cat "$out" >&2; die "cannot parse wrk output for $v"; }
	awk -v v="$v" -v r="$round" -v n="$nreq" -v hz="$HZ" -v cpus="$NCPU" \
		-v f=$((f1 - f0)) -v b=$((b1 - b0)) -v i=$((i1 - i0)) -v ms=$((t1 - t0)) \
		-v rps="$(awk '/^Requests\/sec:/ {print $2}' "$out")" \
		-v p99="$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")" \
		'BEGIN { printf "%s\t%d\t%s\t%s\t%.1f\t%.1f\t%.1f\n", v, r, rps, p99,
			f / hz * 1e6 / n, b / hz * 1e6 / n, i / (ms / 1000 * hz * cpus) * 100 }' >>"$RESULTS"
	log "round $round $v: $(tail -n 1 "$RESULTS" | awk -F'\t' -v back="$BACK_NAME" \
		'{printf "%s req/s, p99 %s ms, tandem %s us/req, %s %s us/req, idle %s%%", $3, $4, $5, back, $6, $7}')"
}

# mean FILE KEY COLUMN
mean() {
	awk -F'\t' -v k="$2" -v c="$3" '$1 == k {s += $c; n++} END { if (n) printf "%.1f", s / n; else print "-" }' "$1"
}

ab_main() {
	case $WORKLOAD in
	hello | flask | proxy | proxy-tcp | static) ;;
	*) die "unknown WORKLOAD '$WORKLOAD' (hello, flask, proxy, proxy-tcp or static)" ;;
	esac
	local a_bin=${A_BIN:-} b_bin=${B_BIN:-}
	[[ -z $a_bin || -x $a_bin ]] || die "A_BIN $a_bin is not an executable"
	[[ -z $b_bin || -x $b_bin ]] || die "B_BIN $b_bin is not an executable"
	A_LABEL=${A_BIN:-${TANDEM_BIN:-./cmd/tandem}} B_LABEL=${B_BIN:-${TANDEM_BIN:-./cmd/tandem}}
	ensure_app_tools
	bench_init
	if [[ -z $a_bin || -z $b_bin ]]; then
		build_tandem || die "tandem does not build (./cmd/tandem)"
		a_bin=${a_bin:-$TMP/tandem} b_bin=${b_bin:-$TMP/tandem}
	fi

	declare -gA WSGI=([hello]=hello:application [flask]=flaskapp:app)
	declare -gA BODY=([hello]="Hello, World!" [flask]="Hello from Flask under tandem" [proxy]="Hello, World!" [proxy-tcp]="Hello, World!")
	declare -gA BIN=([A]=$a_bin [B]=$b_bin) ENVS=([A]=$A_ENV [B]=$B_ENV) HOOKS=([A]=${A_HOOK:-} [B]=${B_HOOK:-})
	BACK_NAME=Python URL_PATH=/
	case $WORKLOAD in
	proxy)
		start_gunicorn ab hello:application
		BACK_NAME=gunicorn
		;;
	proxy-tcp)
		GUNICORN_PORT=$(free_port)
		start_gunicorn ab hello:application --bind "127.0.0.1:$GUNICORN_PORT"
		BACK_NAME=gunicorn
		;;
	static) URL_PATH=/1k.bin BACK_NAME="(none)" ;;
	esac
	RESULTS=$TMP/ab.tsv
	: >"$RESULTS"

	local r
	for r in $(seq 1 "$ROUNDS"); do
		if ((r % 2)); then
			measure A "$r"
			measure B "$r"
		else
			measure B "$r"
			measure A "$r"
		fi
	done
	ab_report
}

ab_report() {
	local v wins
	wins=$(awk -F'\t' '$1 == "A" {a[$2] = $3} $1 == "B" {b[$2] = $3} END { for (r in a) if (b[r] > a[r]) n++; print n + 0 }' "$RESULTS")
	cat <<EOF
### Side by side: $WORKLOAD

$(date -u '+%Y-%m-%d %H:%M UTC') · $NCPU CPUs · \`WORKLOAD=$WORKLOAD ROUNDS=$ROUNDS DUR=$DUR CONNS=$CONNS THREADS=$THREADS WORKERS=$WORKERS bash bench/ab.sh\`

- A: \`$A_LABEL\`${A_ENV:+ with \`$A_ENV\`}${A_HOOK:+, then \`$A_HOOK\`}
- B: \`$B_LABEL\`${B_ENV:+ with \`$B_ENV\`}${B_HOOK:+, then \`$B_HOOK\`}

| variant | req/s (median) | req/s range | p99 (median) | tandem CPU/req (mean) | $BACK_NAME CPU/req (mean) | idle (median) |
|---|--:|--:|--:|--:|--:|--:|
EOF
	for v in A B; do
		printf '| %s | %s | %s–%s | %s ms | %s µs | %s µs | %s %% |\n' "$v" \
			"$(fmt "$(median "$RESULTS" "$v" 3)" 0)" \
			"$(awk -F'\t' -v k="$v" '$1 == k {print $3}' "$RESULTS" | sort -g | head -n 1 | cut -d. -f1)" \
			"$(awk -F'\t' -v k="$v" '$1 == k {print $3}' "$RESULTS" | sort -g | tail -n 1 | cut -d. -f1)" \
			"$(fmt "$(median "$RESULTS" "$v" 4)" 2)" \
			"$(mean "$RESULTS" "$v" 5)" "$(mean "$RESULTS" "$v" 6)" \
			"$(fmt "$(median "$RESULTS" "$v" 7)" 1)"
	done
	cat <<EOF

B / A, median req/s: **$(ratio "$(median "$RESULTS" B 3)" "$(median "$RESULTS" A 3)")**; B served more than A in $wins of $ROUNDS rounds.

<details><summary>All runs</summary>

| variant | round | req/s | p99 ms | tandem µs/req | $BACK_NAME µs/req | idle % |
|---|--:|--:|--:|--:|--:|--:|
EOF
	awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7}' "$RESULTS"
	echo
	echo "</details>"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	ab_main "$@"
fi
