# shellcheck shell=bash
# Shared helpers for the benchmarks in bench/; sourced, not run. Server
# start-up lives here so that static.sh and sendfile-check.sh measure the
# very same configurations, and the measuring (noise accounting around each
# wrk run, medians over the clean runs) so that every script counts alike.
#
# Callers set -euo pipefail before sourcing and may set KEEP=1 to keep the
# temp dir. After `bench_init`, $TMP is the temp dir and $DOCROOT the docroot.

BENCH_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_NAME=$(basename "$0")
KEEP=${KEEP:-0}

log() { printf '%s\n' "$*" >&2; }
die() {
	log "$BENCH_NAME: $*"
	exit 1
}

# apt_install PACKAGE... installs Debian packages; apt needs root, so sudo
# is used otherwise.
apt_install() {
	local sudo=()
	if ((EUID != 0)); then
		command -v sudo >/dev/null || die "need root or sudo to install: $*"
		sudo=(sudo)
	fi
	log "installing $* with apt-get"
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends "$@" >&2
}

# ensure_tools CMD:PACKAGE... installs the packages whose command is missing.
# The benchmark is only meaningful with the real tools, so install them
# rather than silently skipping a server.
ensure_tools() {
	local missing=() pair cmd
	for pair in "$@"; do
		cmd=${pair%%:*}
		command -v "$cmd" >/dev/null || [[ -x /usr/sbin/$cmd ]] || missing+=("${pair#*:}")
	done
	if ((${#missing[@]})); then apt_install "${missing[@]}"; fi
	NGINX=$(command -v nginx || echo /usr/sbin/nginx)
	if ! command -v go >/dev/null; then
		[[ -x /usr/local/go/bin/go ]] || die "go not found (PATH or /usr/local/go/bin)"
		PATH=$PATH:/usr/local/go/bin
	fi
}

# ---------------------------------------------------------------- processes

TMP=""
PIDS=()

bench_cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [[ -n $TMP ]]; then
		if [[ $KEEP == 1 ]]; then
			log "kept $TMP"
		else
			rm -rf "$TMP"
		fi
	fi
}

# bench_init makes the temp dir and docroot and arranges for every process
# started through start_bg to be killed, however the script ends.
bench_init() {
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
	TMP=$(mktemp -d /tmp/tandem-bench.XXXXXX)
	# nginx workers may run as another user; let them traverse into the docroot.
	chmod 755 "$TMP"
	DOCROOT=$TMP/www
	mkdir -p "$DOCROOT"
	# Random data so nothing (compression, dedup, caches keyed on content)
	# can flatter one server.
	head -c 1024 /dev/urandom >"$DOCROOT/1k.bin"
	head -c 102400 /dev/urandom >"$DOCROOT/100k.bin"
	head -c $((10 * 1024 * 1024)) /dev/urandom >"$DOCROOT/10m.bin"
	chmod -R a+rX "$DOCROOT"
}

# start_bg LOGFILE CMD...: run CMD in the background, remember its pid for
# cleanup, and leave it in $LAST_PID.
start_bg() {
	local logf=$1
	shift
	"$@" >"$logf" 2>&1 &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
}

# free_port prints a port nothing is listening on. Bash's /dev/tcp connect
# failing means no listener; ports already handed out are skipped so two
# servers never get the same one before either has bound it. Ports come
# from below the kernel's ephemeral range: a port in it may be taken, after
# the check, by an outgoing connection (nginx → gunicorn over TCP, wrk),
# and the server then fails to bind it (seen in fairness.sh after proxy.sh).
USED_PORTS=" "
EPHEMERAL_LOW=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_port() {
	local p i lo=10000 span
	span=$((EPHEMERAL_LOW - lo))
	((span >= 1000)) || { lo=20000 span=40000; }
	for i in $(seq 1 100); do
		p=$((lo + RANDOM % span))
		[[ $USED_PORTS == *" $p "* ]] && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			USED_PORTS+="$p "
			echo "$p"
			return
		fi
	done
	die "no free port found"
}

# wait_ready polls until the server answers at all, instead of sleeping a
# fixed time: start-up cost differs per server and per machine.
wait_ready() {
	local name=$1 pid=$2 url=$3 logf=$4
	local deadline=$((SECONDS + 15))
	until curl -s -o /dev/null --max-time 1 "$url"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "--- $logf"
			tail -n 20 "$logf" >&2 || true
			die "$name exited during start-up"
		fi
		((SECONDS < deadline)) || die "$name did not answer $url within 15s"
		sleep 0.1
	done
}

# check_file makes sure a server returns 200 and exactly the expected bytes,
# so a 404 page or a truncated body can never be benchmarked as "fast".
check_file() {
	local name=$1 url=$2 want_len=$3 want_file=${4:-}
	local out=$TMP/check.body got
	got=$(curl -s -o "$out" -w '%{http_code} %{size_download}' "$url")
	[[ $got == "200 $want_len" ]] ||
		die "$name $url: got 'status size' = '$got', want '200 $want_len'"
	if [[ -n $want_file ]]; then
		cmp -s "$out" "$want_file" || die "$name $url: body differs from $want_file"
	fi
	rm -f "$out"
}

# ---------------------------------------------------------------- servers

# build_tandem builds ./cmd/tandem into $TMP, or copies $TANDEM_BIN when set
# (to measure a release binary, or one built with other flags).
build_tandem() {
	if [[ -n ${TANDEM_BIN:-} ]]; then
		log "using TANDEM_BIN=$TANDEM_BIN"
		cp "$TANDEM_BIN" "$TMP/tandem"
		return
	fi
	log "building tandem"
	if ! (cd "$BENCH_REPO" && go build -o "$TMP/tandem" ./cmd/tandem) >"$TMP/build.log" 2>&1; then
		cat "$TMP/build.log" >&2
		return 1
	fi
}

# nginx_head NAME prints the start of an nginx config, through `http {`
# and what every benchmark's nginx has there: the current user for the
# workers when running as root (they would drop to nobody), one worker per
# core, $TMP/NAME.pid and $TMP/NAME-error.log, no access log, long
# keep-alive, and temp paths in $TMP (the packaged ones under
# /var/lib/nginx need root). The caller adds its own settings and servers,
# then the closing "}".
nginx_head() {
	local name=$1 user=""
	((EUID == 0)) && user="user $(id -un) $(id -gn);"
	mkdir -p "$TMP/nginx-tmp"
	cat <<EOF
$user
worker_processes $(nproc);
daemon off;
pid $TMP/$name.pid;
error_log $TMP/$name-error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 100000;
	client_body_temp_path $TMP/nginx-tmp/body;
	proxy_temp_path $TMP/nginx-tmp/proxy;
	fastcgi_temp_path $TMP/nginx-tmp/fastcgi;
	uwsgi_temp_path $TMP/nginx-tmp/uwsgi;
	scgi_temp_path $TMP/nginx-tmp/scgi;
EOF
}

# nginx_static prints the http-level settings of nginx tuned the way a
# production static server is: sendfile, and open_file_cache so that a
# file's open and stat are not paid per request.
nginx_static() {
	cat <<EOF
	default_type application/octet-stream;
	sendfile on;
	tcp_nopush on;
	open_file_cache max=1000 inactive=60s;
	open_file_cache_valid 30s;
EOF
}

# start_nginx PORT: nginx tuned the way a production static server would be,
# so tandem is compared against nginx at its best rather than its defaults.
# Sets NGINX_PID (the master; workers are its children).
start_nginx() {
	local port=$1
	{
		nginx_head nginx
		nginx_static
		cat <<EOF
	server {
		listen 127.0.0.1:$port default_server;
		root $DOCROOT;
	}
}
EOF
	} >"$TMP/nginx.conf"
	# daemon off + background job: the master stays our child, so killing
	# its pid on exit takes the workers with it.
	start_bg "$TMP/nginx.out" "$NGINX" -p "$TMP" -c "$TMP/nginx.conf"
	NGINX_PID=$LAST_PID
	wait_ready nginx "$NGINX_PID" "http://127.0.0.1:$port/1k.bin" "$TMP/nginx-error.log"
}

# start_tandem PORT: the plain config a user would write for a static site.
# Sets TANDEM_PID.
start_tandem() {
	local port=$1
	cat >"$TMP/tandem.conf" <<EOF
pid_file $TMP/tandem.pid;
access_log off;
site _ {
	listen 127.0.0.1:$port default;
	root $DOCROOT;
}
EOF
	start_bg "$TMP/tandem.log" "$TMP/tandem" run -c "$TMP/tandem.conf"
	TANDEM_PID=$LAST_PID
	wait_ready tandem "$TANDEM_PID" "http://127.0.0.1:$port/1k.bin" "$TMP/tandem.log"
}

# start_bare PORT: the bare net/http handler; GOMAXPROCS defaults to all
# cores, as nginx gets one worker per core. Sets BARE_PID.
start_bare() {
	local port=$1
	log "building barehandler"
	(cd "$BENCH_REPO" && go build -o "$TMP/barehandler" ./bench/barehandler)
	start_bg "$TMP/bare.log" "$TMP/barehandler" -listen "127.0.0.1:$port" -size 1024
	BARE_PID=$LAST_PID
	wait_ready bare "$BARE_PID" "http://127.0.0.1:$port/" "$TMP/bare.log"
}

# ---------------------------------------------------------------- measuring
# Shared by the benchmarks that take CPU time per request from /proc and
# hold runs back while other processes use the machine. They read the
# caller's HZ (getconf CLK_TCK), NCPU, TMP, NOISE_MAX (percent) and
# NOISE_DEADLINE (SECONDS value after which runs go ahead anyway).

busy_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat; }
proc_ticks() {
	local p t=0 u
	for p in "$@"; do
		u=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || u=0
		t=$((t + ${u:-0}))
	done
	echo "$t"
}
child_ticks() {
	times >"$TMP/times"
	awk -v hz="$HZ" 'NR == 2 {
		n = 0
		for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] }
		printf "%d\n", n * hz }' "$TMP/times"
}
now_ms() { date +%s%3N; }
to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
		printf "%.3f", n }'
}
noise_budget_left() { ((SECONDS < NOISE_DEADLINE)); }
wait_quiet() {
	local b0 b1
	while :; do
		b0=$(busy_ticks)
		sleep 0.5
		b1=$(busy_ticks)
		(((b1 - b0) * 200 <= NOISE_MAX * HZ * NCPU)) && return
		if ! noise_budget_left; then
			log "warning: machine busy and NOISE_BUDGET used up; running anyway"
			return
		fi
	done
}

# noise_init: what the noise accounting reads. Call it once the servers
# are up: NOISE_BUDGET counts from here, and KSOFTIRQD lists the kernel
# threads that do loopback packet processing on the servers' behalf (the
# rest of it is billed to the servers' own stime), counted as theirs.
noise_init() {
	HZ=$(getconf CLK_TCK)
	NCPU=$(nproc)
	NOISE_DEADLINE=$((SECONDS + NOISE_BUDGET))
	KSOFTIRQD=$(pgrep '^ksoftirqd/' | tr '\n' ' ' || true)
}

# server_ticks SERVER, a TICKS_CMD for measured_run: everything counted as
# ours (the processes in SRV_PIDS[SERVER], an associative array the caller
# fills, and ksoftirqd), then the server's own ticks.
declare -A SRV_PIDS
server_ticks() {
	local v k
	# shellcheck disable=SC2086 # pid lists
	v=$(proc_ticks ${SRV_PIDS[$1]}) k=$(proc_ticks $KSOFTIRQD)
	echo "$((v + k)) $v"
}

# measured_run LABEL OUT ROUND TICKS_CMD CMD...: runs CMD (output to OUT)
# with the noise accounting. TICKS_CMD (a function name, then any
# arguments, separated by spaces) prints the servers' utime+stime ticks,
# whitespace-separated: the first is everything counted as ours (the
# servers, their workers, ksoftirqd), the rest are parts the caller wants
# per unit of work (e.g. front end and Python). The machine's counters
# bracket CMD alone and TICKS_CMD runs outside that bracket: its forks (a
# sed and an awk per process) would otherwise count as other processes'
# CPU, about 11 % of the machine with four servers up.
#
# A run in which other processes took more than NOISE_MAX % of the machine
# is repeated (at most twice, within NOISE_BUDGET; REPEATED counts them).
# ROUND "warm" neither waits for a quiet machine nor repeats. CMD failing
# stops the benchmark.
#
# Sets RUN_FOREIGN (%), RUN_CHILD (CMD's own ticks) and RUN_TICKS (array:
# TICKS_CMD's fields, run's end minus start).
REPEATED=0
measured_run() {
	local label=$1 out=$2 round=$3 ticks_cmd=$4 try b0 b1 t0 t1 c0 c1 i
	local -a v0 v1
	shift 4
	for try in 1 2 3; do
		[[ $round == warm ]] || wait_quiet
		# shellcheck disable=SC2086 # the command and its arguments
		read -ra v0 < <($ticks_cmd)
		child_ticks >"$TMP/c0"
		b0=$(busy_ticks) t0=$(now_ms)
		"$@" >"$out" 2>&1 || { tail -n 30 "$out" >&2; die "$label: the measured command failed: $*"; }
		b1=$(busy_ticks) t1=$(now_ms)
		child_ticks >"$TMP/c1"
		# shellcheck disable=SC2086
		read -ra v1 < <($ticks_cmd)
		c0=$(<"$TMP/c0") c1=$(<"$TMP/c1")
		RUN_CHILD=$((c1 - c0))
		RUN_TICKS=()
		for i in "${!v0[@]}"; do RUN_TICKS+=($((v1[i] - v0[i]))); done
		RUN_FOREIGN=$(awk -v o=$((b1 - b0 - RUN_TICKS[0] - RUN_CHILD)) -v ms=$((t1 - t0)) \
			-v hz="$HZ" -v n="$NCPU" 'BEGIN { f = o / (ms / 1000 * hz * n) * 100; if (f < 0) f = 0; if (f > 100) f = 100; printf "%.1f", f }')
		[[ $round == warm ]] && break
		awk -v f="$RUN_FOREIGN" -v m="$NOISE_MAX" 'BEGIN { exit !(f > m) }' || break
		if ((try == 3)) || ! noise_budget_left; then
			log "warning: $label: other processes used ${RUN_FOREIGN}% of the CPU; kept anyway"
			break
		fi
		log "$label: other processes used ${RUN_FOREIGN}% of the CPU; repeating (try $try)"
		REPEATED=$((REPEATED + 1))
	done
}

# measure_wrk LABEL OUT ROUND TICKS_CMD WRK_ARG...: measured_run of wrk.
# Non-2xx answers stop the benchmark; socket errors are logged and
# collected in $TMP/socket-errors for the report. Sets WRK_FOREIGN (%),
# WRK_RPS, WRK_P99 (ms), WRK_NREQ, WRK_CHILD (wrk's own ticks) and
# WRK_TICKS (as RUN_TICKS).
measure_wrk() {
	local label=$1 out=$2
	measured_run "$1" "$2" "$3" "$4" timeout "${WRK_TIMEOUT:-900}" wrk "${@:5}"
	# shellcheck disable=SC2034 # read by the callers
	WRK_FOREIGN=$RUN_FOREIGN WRK_CHILD=$RUN_CHILD WRK_TICKS=("${RUN_TICKS[@]}")
	if grep -q 'Non-2xx or 3xx' "$out"; then
		cat "$out" >&2
		die "$label: wrk saw non-2xx responses"
	fi
	if grep -q 'Socket errors' "$out"; then
		log "warning: $label: $(grep 'Socket errors' "$out" | sed 's/^ *//')"
		echo "$label: $(grep 'Socket errors' "$out" | sed 's/^ *//')" >>"$TMP/socket-errors"
	fi
	WRK_RPS=$(awk '/^Requests\/sec:/ {print $2}' "$out")
	WRK_P99=$(awk '$1 == "99%" {print $2}' "$out")
	WRK_NREQ=$(awk '/requests in/ {print $1; exit}' "$out")
	[[ -n $WRK_RPS && -n $WRK_P99 && -n $WRK_NREQ ]] || { cat "$out" >&2; die "cannot parse wrk output for $label"; }
	WRK_P99=$(to_ms "$WRK_P99")
}

# us_per_req TICKS: CPU microseconds per request of the last measure_wrk.
us_per_req() {
	awk -v t="$1" -v n="$WRK_NREQ" -v hz="$HZ" 'BEGIN { printf "%.1f", n ? t / hz * 1e6 / n : 0 }'
}

# ---------------------------------------------------------------- results
# static.sh, cache.sh and compress.sh append one tab-separated row per
# measured run to $RESULTS: two key fields (what ran, and on what), the
# round, req/s, p99 ms, one figure of the script's own, and the share of
# the machine other processes took (%). The report reads them with these.

# select_used: writes to $USED the runs the medians use. Runs in which other
# processes still took more than NOISE_MAX % (the budget ran out) are left
# out: that CPU was missing for one server only. The servers' own CPU is
# not in that share, so this cannot favour a slow server. A key without
# any clean run keeps all its runs, flagged by results_counts.
select_used() {
	USED=$TMP/used.tsv
	awk -F'\t' -v m="$NOISE_MAX" '
		{ row[NR] = $0; key[NR] = $1 SUBSEP $2; clean[NR] = ($7 <= m); if (clean[NR]) nclean[$1, $2]++ }
		END { for (i = 1; i <= NR; i++) if (clean[i] || !nclean[key[i]]) print row[i] }' "$RESULTS" >"$USED"
}

# results_counts KEY1 KEY2: "used/all" runs, with a * when none were clean.
results_counts() {
	awk -F'\t' -v a="$1" -v b="$2" -v m="$NOISE_MAX" '$1 == a && $2 == b { n++; if ($7 <= m) c++ }
		END { if (c) printf "%d/%d", c, n; else printf "%d/%d*", n, n }' "$RESULTS"
}

# median_of: the median of the numbers on stdin, one per line; "-" for none.
median_of() {
	sort -g | awk '{v[NR] = $1} END {
		if (NR == 0) { print "-"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# results_median KEY1 KEY2 COLUMN: median of COLUMN over the used runs.
results_median() {
	awk -F'\t' -v a="$1" -v b="$2" -v c="$3" '$1 == a && $2 == b {print $c}' "$USED" | median_of
}

# results_range KEY1 KEY2: "min–max" req/s over the used runs, to show the
# spread the median hides.
results_range() {
	awk -F'\t' -v a="$1" -v b="$2" '$1 == a && $2 == b {
		if (n++ == 0 || $4 < lo) lo = $4; if ($4 > hi) hi = $4 }
		END { if (n) printf "%.0f–%.0f", lo, hi; else print "-" }' "$USED"
}

# noise_summary COLUMN: "median X%, max Y%" of the other processes' share,
# column COLUMN of $RESULTS (7 in the layout above).
noise_summary() {
	awk -F'\t' -v c="$1" '{print $c}' "$RESULTS" | sort -g |
		awk '{v[NR] = $1} END { printf "median %.1f%%, max %.1f%%", v[int((NR + 1) / 2)], v[NR] }'
}

# ratio A B: A / B to two places, "-" when either is missing or B is 0.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'
}
# fmt VALUE PLACES: fixed point without thousands separators, so that the
# tables stay aligned and diffable; "-" stays "-".
fmt() { awk -v v="$1" -v p="$2" 'BEGIN { if (v == "-" || v == "") print "-"; else printf "%.*f", p, v }'; }
