#!/usr/bin/env bash
# Fairness benchmark: are fast requests stuck behind slow ones?
#
#   bash bench/fairness.sh                # defaults: DUR=10s ROUNDS=3
#
# One app (bench/apps/fairness.py) with a slow endpoint (/slow:
# time.sleep(0.5)) and a fast one (/fast), WORKERS (4) workers, served by
# tandem (`app` block, preload on) and by nginx → gunicorn sync workers on a
# unix socket (the same set-up as bench/app.sh). For each server, per round:
#   - 2 clients hammer /slow continuously: wrk -t1 -c2, running 1 s before
#     and 1 s after the fast window, so the slow load covers all of it;
#   - 2 clients hit /fast: wrk -t1 -c2 -dDUR --latency.
# Reported: the fast endpoint's p50/p99/max latency and req/s, and the slow
# endpoint's req/s (at most 2 clients × 2/s = 4/s). Target for tandem: fast
# p99 < 20 ms. The servers alternate within each round; medians over rounds.
#
# Knobs: DUR (fast window, default 10s), ROUNDS (default 3), WORKERS
# (default 4), NOISE_MAX / NOISE_BUDGET / TANDEM_BIN / KEEP as bench/app.sh.
set -euo pipefail

DUR=${DUR:-10s}
ROUNDS=${ROUNDS:-3}
WORKERS=${WORKERS:-4}

# shellcheck source=bench/app.sh
. "$(dirname "${BASH_SOURCE[0]}")/app.sh"

# fair_run LABEL BASE-URL OUT-PREFIX: one round for one server. Sets
# FAST_P50 FAST_P99 FAST_MAX (ms), FAST_RPS, SLOW_RPS, WRK_FOREIGN.
fair_run() {
	local label=$1 base=$2 out=$3 secs slow_pid
	secs=${DUR%s}
	wait_quiet
	wrk -t1 -c2 -d"$((secs + 2))s" --timeout 10s --latency "$base/slow" >"$out-slow.txt" 2>&1 &
	slow_pid=$!
	sleep 1
	# run_wrk for the noise accounting only: a repeat would run without the
	# slow load, so NOISE_MAX=100 (never repeat, no waiting); the machine was
	# checked to be quiet above.
	NOISE_MAX=100 run_wrk "$label fast" "$base/fast" "$DUR" 2 1 "$out-fast.txt"
	wait "$slow_pid" || { cat "$out-slow.txt" >&2; die "$label: slow wrk failed"; }
	if grep -q 'Non-2xx or 3xx' "$out-slow.txt"; then
		cat "$out-slow.txt" >&2
		die "$label: non-2xx answers on /slow"
	fi
	FAST_RPS=$WRK_RPS
	FAST_P99=$WRK_P99
	FAST_P50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out-fast.txt")")
	FAST_MAX=$(to_ms "$(awk '$1 == "Latency" {print $4; exit}' "$out-fast.txt")")
	SLOW_RPS=$(awk '/^Requests\/sec:/ {print $2}' "$out-slow.txt")
}

fair_main() {
	ensure_app_tools
	LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
	bench_init
	build_tandem || die "tandem does not build (./cmd/tandem)"
	RESULTS=$TMP/fair.tsv
	: >"$RESULTS"
	REPEATED=0

	local wsgi=fairness:application s r i
	declare -A PORT
	PORT[tandem]=$(free_port)
	PORT[gunicorn]=$(free_port)
	start_tandem_app fair "${PORT[tandem]}" "$wsgi" on
	start_gunicorn fair "$wsgi"
	start_nginx_proxy fair "${PORT[gunicorn]}" -
	ROOTS=("$TANDEM_PID" "$GUNICORN_PID" "$NGINX_PID")
	local SERVERS=(tandem gunicorn)
	for s in "${SERVERS[@]}"; do
		check_body "$s" "http://127.0.0.1:${PORT[$s]}/fast" "fast"
		check_body "$s" "http://127.0.0.1:${PORT[$s]}/slow" "slow"
	done
	log "both answer 200 with the right bodies on /fast and /slow"

	for ((r = 1; r <= ROUNDS; r++)); do
		for ((i = 0; i < 2; i++)); do
			s=${SERVERS[$(((i + r - 1) % 2))]}
			fair_run "round $r $s" "http://127.0.0.1:${PORT[$s]}" "$TMP/fair-$s-$r"
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$r" "$FAST_P50" "$FAST_P99" "$FAST_MAX" \
				"$FAST_RPS" "$SLOW_RPS" "$WRK_FOREIGN" >>"$RESULTS"
			log "$(printf 'round %s  %-8s fast p50 %7s ms  p99 %7s ms  max %7s ms  %8s req/s   slow %5s req/s  other CPU %5s%%' \
				"$r" "$s" "$FAST_P50" "$FAST_P99" "$FAST_MAX" "$FAST_RPS" "$SLOW_RPS" "$WRK_FOREIGN")"
		done
	done

	local cpu gunicorn_v noise
	cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
	gunicorn_v=$(gunicorn --version 2>&1 | awk '{print $NF}' | tr -d '()')
	noise=$(noise_summary 8)
	cat <<EOF
### Fairness: fast requests next to slow ones

$(date -u '+%Y-%m-%d %H:%M UTC') · $(nproc) CPUs (${cpu}) · gunicorn ${gunicorn_v} · $({ "$NGINX" -v 2>&1 || true; } | sed 's/^nginx version: //') · load average before: ${LOAD_BEFORE}

\`DUR=$DUR ROUNDS=$ROUNDS WORKERS=$WORKERS bash bench/fairness.sh\` — $WORKERS workers; 2 clients on /slow (\`time.sleep(0.5)\`, \`wrk -t1 -c2\`) for the whole window, 2 clients on /fast (\`wrk -t1 -c2 -d$DUR --latency\`); medians of $ROUNDS rounds.
CPU used by other processes during the runs: $noise of the machine; runs repeated: ${REPEATED}.

| server | fast p50 | fast p99 (target < 20 ms) | fast max | fast req/s | slow req/s |
|---|--:|--:|--:|--:|--:|
EOF
	for s in "${SERVERS[@]}"; do
		printf '| %s | %s ms | %s ms | %s ms | %s | %s |\n' "$(server_label "$s")" \
			"$(fmt "$(median "$RESULTS" "$s" 3)" 2)" "$(fmt "$(median "$RESULTS" "$s" 4)" 2)" \
			"$(fmt "$(median "$RESULTS" "$s" 5)" 2)" "$(fmt "$(median "$RESULTS" "$s" 6)" 0)" \
			"$(fmt "$(median "$RESULTS" "$s" 7)" 2)"
	done
	cat <<EOF

<details><summary>All runs</summary>

| server | round | fast p50 ms | fast p99 ms | fast max ms | fast req/s | slow req/s | other CPU % |
|---|--:|--:|--:|--:|--:|--:|--:|
$(awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8}' "$RESULTS")

</details>
EOF
}

fair_main "$@"
