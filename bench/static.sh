#!/usr/bin/env bash
# Static-file benchmark: tandem vs nginx vs a bare net/http handler.
#
#   bash bench/static.sh                  # defaults: DUR=5s ROUNDS=5 CONNS=64
#   DUR=10s ROUNDS=7 bash bench/static.sh
#
# Everything runs on 127.0.0.1 with free ports picked at runtime, in a
# throwaway directory that is removed on exit (KEEP=1 keeps it for a look
# at the logs). The markdown report goes to stdout; progress goes to stderr,
# so `bash bench/static.sh > results.md` captures just the tables.
#
# Knobs (environment):
#   DUR        wrk duration per run                       (default 5s)
#   ROUNDS     rounds; every server is run once per round (default 5)
#   CONNS      connections for the 1 KiB / 100 KiB runs  (default 64)
#   BIG_CONNS  connections for the 10 MiB run             (default 8)
#   THREADS    wrk threads                                (default 2)
#   NOISE_MAX  % of all CPU other processes may use during a run before the
#              run is discarded and repeated (default 10; 100 disables)
#   NOISE_BUDGET seconds the whole run may spend waiting for an idle machine
#              and repeating noisy runs (default 60)
#   NO_TANDEM  set to 1 to benchmark only nginx and the bare handler
#              (for working on this script while tandem does not build)
#   TANDEM_BIN use this tandem binary instead of building ./cmd/tandem
#   KEEP       set to 1 to keep the temp dir (configs, logs, wrk output)
set -euo pipefail

DUR=${DUR:-5s}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-64}
BIG_CONNS=${BIG_CONNS:-8}
THREADS=${THREADS:-2}
NOISE_MAX=${NOISE_MAX:-10}
NOISE_BUDGET=${NOISE_BUDGET:-60}
NO_TANDEM=${NO_TANDEM:-0}
KEEP=${KEEP:-0}

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# check_keepalive: wrk reuses connections; a server that closed after every
# response would be measured mostly on TCP setup, so insist that the second
# of two requests rides the first one's connection.
check_keepalive() {
	local name=$1 url=$2 got
	got=$(curl -s -o /dev/null -o /dev/null -w '%{num_connects}\n' "$url" "$url" | tail -n 1)
	[[ $got == 0 ]] || die "$name $url: connection not kept alive between requests"
}

# ---------------------------------------------------------------- setup

ensure_tools nginx:nginx-light wrk:wrk curl:curl
# Other work on the machine shows up in every number; record it with them.
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_init

SERVERS=(nginx tandem bare)
if [[ $NO_TANDEM == 1 ]]; then
	log "NO_TANDEM=1: skipping tandem, benchmarking nginx and bare only"
	SERVERS=(nginx bare)
elif ! build_tandem; then
	die "tandem does not build (./cmd/tandem); fix it, or run with NO_TANDEM=1 to benchmark only nginx and bare"
fi

declare -A PORT
for s in "${SERVERS[@]}"; do PORT[$s]=$(free_port); done

start_nginx "${PORT[nginx]}"
[[ $NO_TANDEM == 1 ]] || start_tandem "${PORT[tandem]}"
start_bare "${PORT[bare]}"

# ---------------------------------------------------------------- checks

FILES=(1k.bin 100k.bin 10m.bin)
declare -A SIZE=([1k.bin]=1024 [100k.bin]=102400 [10m.bin]=$((10 * 1024 * 1024)))

# The bare handler only stands in for the 1 KiB case: it serves from memory,
# so comparing it on big files would say nothing about file serving.
servers_for() {
	local f=$1 s
	for s in "${SERVERS[@]}"; do
		[[ $s == bare && $f != 1k.bin ]] && continue
		echo "$s"
	done
}

for f in "${FILES[@]}"; do
	for s in $(servers_for "$f"); do
		if [[ $s == bare ]]; then
			check_file "$s" "http://127.0.0.1:${PORT[$s]}/$f" "${SIZE[$f]}"
		else
			check_file "$s" "http://127.0.0.1:${PORT[$s]}/$f" "${SIZE[$f]}" "$DOCROOT/$f"
		fi
	done
done
for s in "${SERVERS[@]}"; do check_keepalive "$s" "http://127.0.0.1:${PORT[$s]}/1k.bin"; done
log "all servers return 200 and the right bytes, with keep-alive: ${SERVERS[*]}"

# ---------------------------------------------------------------- runs

# to_ms / to_mib normalise wrk's human units (us/ms/s, B/KB/MB/GB; wrk's
# K/M/G are powers of 1024).
to_mib() {
	awk -v v="$1" 'BEGIN {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "B") n /= 1048576; else if (u == "KB") n /= 1024
		else if (u == "GB") n *= 1024; else if (u == "TB") n *= 1048576
		printf "%.2f", n }'
}

# ---------------------------------------------------------------- noise
#
# The servers and wrk share the machine with whatever else runs on it (on a
# shared box: other people's builds and tests). That CPU is taken from all
# servers unevenly and silently, so account for it: during each run,
# foreign CPU = all CPU busy time (/proc/stat) − the servers' time
# (/proc/PID/stat) − wrk's time (the shell's child times). Runs above
# NOISE_MAX percent of the machine are repeated, and before each run we wait
# for the machine to be idle, so one burst of someone's `go test` does not
# land on one server (measure_wrk and wait_quiet in lib.sh). Waiting and
# repeating share one budget (NOISE_BUDGET seconds) so that a machine that
# stays busy makes the run noisier, reported, but not endless.

noise_init
OUR_PIDS=()
for p in "${PIDS[@]}"; do
	OUR_PIDS+=("$p")
	# nginx's workers (and any child a server forks) do the serving.
	mapfile -t -O "${#OUR_PIDS[@]}" OUR_PIDS < <(pgrep -P "$p" || true)
done

# The kernel's loopback packet processing runs in softirq context, partly
# inside our processes (tick accounting bills it to their stime) and partly
# in the ksoftirqd threads; count both as ours.
mapfile -t -O "${#OUR_PIDS[@]}" OUR_PIDS < <(pgrep '^ksoftirqd/' || true)
all_servers_ticks() { proc_ticks "${OUR_PIDS[@]}"; }

RESULTS=$TMP/results.tsv
: >"$RESULTS"

# run_wrk SERVER FILE ROUND DURATION: one measured run. Appends "server file
# round req/s p99_ms MiB/s foreign%" to RESULTS unless ROUND is "warm".
run_wrk() {
	local s=$1 f=$2 round=$3 dur=$4 conns=$CONNS tps
	[[ $f == 10m.bin ]] && conns=$BIG_CONNS
	local path=/$f
	[[ $s == bare ]] && path=/
	local out=$TMP/wrk-$s-$f-$round.txt
	measure_wrk "round $round $s $f" "$out" "$round" all_servers_ticks \
		-t"$THREADS" -c"$conns" -d"$dur" --latency "http://127.0.0.1:${PORT[$s]}$path"
	[[ $round == warm ]] && return
	tps=$(awk '/^Transfer\/sec:/ {print $2}' "$out")
	[[ -n $tps ]] || { cat "$out" >&2; die "cannot parse wrk output for $s $f"; }
	tps=$(to_mib "$tps")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$f" "$round" "$WRK_RPS" "$WRK_P99" "$tps" "$WRK_FOREIGN" >>"$RESULTS"
	log "$(printf 'round %s  %-6s %-8s %10s req/s  p99 %8s ms  %9s MiB/s  other CPU %5s%%' \
		"$round" "$s" "$f" "$WRK_RPS" "$WRK_P99" "$tps" "$WRK_FOREIGN")"
}

# Warm-up: page cache, nginx's open_file_cache, Go's heap and scheduler all
# settle on the first requests; keep that out of the measured rounds.
log "warm-up (1s per server and file)"
for f in "${FILES[@]}"; do
	for s in $(servers_for "$f"); do run_wrk "$s" "$f" warm 1s; done
done

# Servers alternate within each round, and the starting server rotates from
# round to round, so slow drift (thermal throttling, noisy neighbours, page
# cache) spreads over all servers instead of landing on whichever runs last.
for ((r = 1; r <= ROUNDS; r++)); do
	for f in "${FILES[@]}"; do
		mapfile -t order < <(servers_for "$f")
		n=${#order[@]}
		for ((i = 0; i < n; i++)); do
			run_wrk "${order[$(((i + r - 1) % n))]}" "$f" "$r" "$DUR"
		done
	done
done

# ---------------------------------------------------------------- report

select_used

declare -A LABEL=([1k.bin]="1 KiB" [100k.bin]="100 KiB" [10m.bin]="10 MiB")
declare -A RPS P99 MIBS
for f in "${FILES[@]}"; do
	for s in $(servers_for "$f"); do
		RPS[$s,$f]=$(results_median "$s" "$f" 4)
		P99[$s,$f]=$(results_median "$s" "$f" 5)
		MIBS[$s,$f]=$(results_median "$s" "$f" 6)
	done
done

noise=$(noise_summary 7)
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
nginx_v=$({ "$NGINX" -v 2>&1 || true; } | sed 's/^nginx version: //')
wrk_v=$({ wrk -v 2>&1 || true; } | awk 'NR == 1 {print $2}')

cat <<EOF
### Static files: tandem vs nginx vs bare net/http

$(date -u '+%Y-%m-%d %H:%M UTC') · $(nproc) CPUs (${cpu}) · $(go version | awk '{print $3}') · ${nginx_v} · wrk ${wrk_v} · load average before the run: ${LOAD_BEFORE}

\`DUR=$DUR ROUNDS=$ROUNDS CONNS=$CONNS BIG_CONNS=$BIG_CONNS THREADS=$THREADS NOISE_MAX=$NOISE_MAX NOISE_BUDGET=$NOISE_BUDGET bash bench/static.sh\` — medians of $ROUNDS rounds; wrk -t$THREADS, -c$CONNS for 1 KiB/100 KiB, -c$BIG_CONNS for 10 MiB.
CPU used by other processes during the runs: $noise of the machine; runs repeated for exceeding ${NOISE_MAX}%: $REPEATED. Medians and ranges are over the runs under ${NOISE_MAX}% ("runs used"; * = none was, all kept).

| file | server | req/s | req/s range | p99 latency | transfer | runs used |
|---|---|--:|--:|--:|--:|--:|
EOF
for f in "${FILES[@]}"; do
	for s in $(servers_for "$f"); do
		printf '| %s | %s | %s | %s | %s ms | %s MiB/s | %s |\n' "${LABEL[$f]}" "$s" \
			"$(fmt "${RPS[$s,$f]}" 0)" "$(results_range "$s" "$f")" "$(fmt "${P99[$s,$f]}" 2)" \
			"$(fmt "${MIBS[$s,$f]}" 1)" "$(results_counts "$s" "$f")"
	done
done

if [[ $NO_TANDEM != 1 ]]; then
	cat <<EOF

| comparison | ratio | p99 tandem / other |
|---|--:|--:|
| 1 KiB req/s, tandem / bare handler | $(ratio "${RPS[tandem,1k.bin]}" "${RPS[bare,1k.bin]}") | $(fmt "${P99[tandem,1k.bin]}" 2) / $(fmt "${P99[bare,1k.bin]}" 2) ms |
| 1 KiB req/s, tandem / nginx | $(ratio "${RPS[tandem,1k.bin]}" "${RPS[nginx,1k.bin]}") | $(fmt "${P99[tandem,1k.bin]}" 2) / $(fmt "${P99[nginx,1k.bin]}" 2) ms |
| 100 KiB req/s, tandem / nginx | $(ratio "${RPS[tandem,100k.bin]}" "${RPS[nginx,100k.bin]}") | $(fmt "${P99[tandem,100k.bin]}" 2) / $(fmt "${P99[nginx,100k.bin]}" 2) ms |
| 10 MiB MiB/s, tandem / nginx | $(ratio "${MIBS[tandem,10m.bin]}" "${MIBS[nginx,10m.bin]}") | $(fmt "${P99[tandem,10m.bin]}" 2) / $(fmt "${P99[nginx,10m.bin]}" 2) ms |
EOF
else
	cat <<EOF

tandem skipped (NO_TANDEM=1). 1 KiB req/s, nginx / bare handler: $(ratio "${RPS[nginx,1k.bin]}" "${RPS[bare,1k.bin]}")
EOF
fi

if [[ -f $TMP/socket-errors ]]; then
	echo
	echo "wrk socket errors: $(tr '\n' ';' <"$TMP/socket-errors")"
fi

# Every run, in the order it ran, for anyone who wants more than medians.
cat <<EOF

<details><summary>All runs</summary>

| round | server | file | req/s | p99 ms | MiB/s | other CPU % |
|--:|---|---|--:|--:|--:|--:|
$(awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s |\n", $3, $1, $2, $4, $5, $6, $7}' "$RESULTS")

</details>
EOF
