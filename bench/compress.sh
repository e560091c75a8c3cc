#!/usr/bin/env bash
# Compression benchmark: on-the-fly gzip of a ~100 KiB HTML page, tandem vs
# nginx at the same level, plus tandem's zstd and br on the same page.
#
#   bash bench/compress.sh                        # DURATION=5s ROUNDS=3 CONNS=64
#   DURATION=10 ROUNDS=5 bash bench/compress.sh > compress-results.md
#
# The page is generated (deterministic markup-like text: articles, links,
# tables, words drawn with a skewed frequency from a made-up vocabulary) so
# that gzip -5 takes it to ~30%, like real HTML; it is not a repeated
# string. Both servers serve it as a static file:
#   tandem  `compress gzip; compress_level gzip N;` in a location
#           (GOMAXPROCS = all cores; klauspost/compress)
#   nginx   `gzip on; gzip_comp_level N; gzip_min_length 1000; gzip_vary on;`
#           worker_processes = cores, sendfile on, open_file_cache (zlib)
# for every gzip level in LEVELS, and tandem alone for zstd (ZSTD_LEVEL) and
# br (BR_LEVEL). IDENTITY=1 adds both servers without compression, as the
# baseline of what the compressor costs. Each case is its own location of
# one server process per server, so the servers run side by side and wrk
# alternates between them: within a round the cases rotate, and which
# server goes first alternates from round to round. wrk keeps connections
# alive and sends `Accept-Encoding: gzip` (or zstd, br).
#
# Before measuring, every case is checked with curl: 200, the expected
# Content-Encoding and Vary, a body that decodes (gzip -d, zstd -d,
# brotli -d) to exactly the page, and keep-alive. The compressed sizes are
# reported, so a fast server cannot win by compressing less.
#
# CPU per request is the server's own utime+stime (/proc/PID/stat, nginx
# master and workers) over the run divided by wrk's request count. The
# kernel's loopback work partly lands in that time, as it does for both.
#
# Everything runs on 127.0.0.1 with free ports, in a throwaway directory
# removed on exit (KEEP=1 keeps it). Markdown goes to stdout, progress to
# stderr.
#
# Knobs (environment):
#   DURATION   wrk duration per run; a bare number is seconds (default 5s;
#              DUR is accepted too, as in the other scripts)
#   ROUNDS     rounds; every case runs once per round      (default 3)
#   CONNS      wrk connections                             (default 64)
#   THREADS    wrk threads                                 (default 2)
#   LEVELS     gzip levels compared with nginx             (default "5 1")
#   ZSTD_LEVEL tandem's zstd level                         (default 3)
#   BR_LEVEL   tandem's brotli level                       (default 4)
#   IDENTITY   1 = also measure both servers uncompressed  (default 1)
#   PAGE_SIZE  bytes of the generated page                 (default 102400)
#   NOISE_MAX  % of all CPU other processes may use during a run before it
#              is repeated (at most twice)                  (default 10)
#   NOISE_BUDGET seconds the whole run may spend waiting for an idle
#              machine and repeating noisy runs             (default 120)
#   TANDEM_BIN use this tandem binary instead of building ./cmd/tandem
#   KEEP       set to 1 to keep the temp dir (configs, logs, wrk output)
set -euo pipefail

DURATION=${DURATION:-${DUR:-5s}}
[[ $DURATION =~ ^[0-9]+$ ]] && DURATION=${DURATION}s
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
LEVELS=${LEVELS:-5 1}
ZSTD_LEVEL=${ZSTD_LEVEL:-3}
BR_LEVEL=${BR_LEVEL:-4}
IDENTITY=${IDENTITY:-1}
PAGE_SIZE=${PAGE_SIZE:-102400}
NOISE_MAX=${NOISE_MAX:-10}
NOISE_BUDGET=${NOISE_BUDGET:-120}
KEEP=${KEEP:-0}
PY=/usr/bin/python3

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for l in $LEVELS; do
	[[ $l =~ ^[1-9]$ ]] || die "LEVELS: gzip level '$l' is not 1-9"
done
[[ $ZSTD_LEVEL =~ ^[0-9]+$ ]] || die "ZSTD_LEVEL: '$ZSTD_LEVEL' is not a number"
[[ $BR_LEVEL =~ ^[0-9]+$ ]] || die "BR_LEVEL: '$BR_LEVEL' is not a number"
((ROUNDS >= 1)) || die "ROUNDS must be at least 1"

# ---------------------------------------------------------------- page

# gen_page N: a deterministic HTML page of exactly N bytes (ASCII) that
# compresses like real markup. Python's seeded Random gives the same
# sequence on every CPython 3.
gen_page() {
	"$PY" - "$1" <<'PY'
import random, sys

n = int(sys.argv[1])
rng = random.Random(20240601)
syl = ("ka to re mi sun del par o e tion al in ver con stru li ne ab ser qu "
       "ent ing ph ra ble ex pro an ty er st de").split()
words = ["".join(syl[rng.randrange(len(syl))] for _ in range(1 + rng.randrange(4)))
         for _ in range(3000)]

def word():  # low indexes far more often, as in prose
    r = rng.random()
    return words[int(len(words) * r * r * r)]

def sentence(lo, hi):
    out = []
    for i in range(lo + rng.randrange(hi - lo)):
        w = word()
        if i == 0:
            w = w.capitalize()
        if rng.randrange(14) == 0:
            w = '<a href="/wiki/%s">%s</a>' % (w.lower(), w)
        elif rng.randrange(25) == 0:
            w = "<code>%s_%d</code>" % (w, rng.randrange(100))
        if rng.randrange(12) == 0:
            w += ","
        out.append(w)
    return " ".join(out).rstrip(",") + "."

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
head = ['<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<title>Archive | tandem example site</title>\n'
        '<link rel="stylesheet" href="/static/css/site.css?v=3">\n'
        '<script defer src="/static/js/app.js?v=3"></script>\n</head>\n'
        '<body class="archive">\n<header class="site-header"><nav class="nav"><ul>\n']
for w in ("Home", "Blog", "Docs", "Downloads", "Community", "About"):
    head.append('<li class="nav-item"><a class="nav-link" href="/%s/">%s</a></li>\n' % (w.lower(), w))
head.append('</ul></nav></header>\n<main id="content" class="container">\n')
tail = ('</main>\n<footer class="site-footer"><p>&copy; 2024 Example. '
        'All rights reserved.</p></footer>\n</body>\n</html>\n')

parts = head
size = sum(map(len, parts))
while True:
    a = ['<article class="post" id="post-%d">\n<h2 class="post-title"><a href="/posts/%d/%s">%s</a></h2>\n'
         % (rng.randrange(100000), 2000 + rng.randrange(25), word(), sentence(3, 9)[:-1]),
         '<p class="post-meta">Posted on <time datetime="20%02d-%02d-%02d">%d %s</time> '
         'by <a class="author" href="/u/%s">%s</a></p>\n'
         % (rng.randrange(10, 25), 1 + rng.randrange(12), 1 + rng.randrange(28),
            1 + rng.randrange(28), MONTHS[rng.randrange(12)], word(), word())]
    for _ in range(1 + rng.randrange(3)):
        a.append("<p>" + " ".join(sentence(6, 22) for _ in range(2 + rng.randrange(4))) + "</p>\n")
    if rng.randrange(3) == 0:
        a.append('<ul class="tags">' + "".join('<li><a href="/tag/%s">%s</a></li>' % (t, t)
                 for t in (word() for _ in range(2 + rng.randrange(4)))) + "</ul>\n")
    if rng.randrange(5) == 0:
        a.append('<table class="data"><tr><th>name</th><th>value</th></tr>'
                 + "".join("<tr><td>%s</td><td>%d</td></tr>" % (word(), rng.randrange(100000))
                           for _ in range(3 + rng.randrange(5))) + "</table>\n")
    a.append("</article>\n")
    s = "".join(a)
    if size + len(s) + len(tail) > n:
        break
    parts.append(s)
    size += len(s)
# Fill the remainder with a comment of words, so the page is exactly n bytes.
pad = n - size - len(tail)
if pad >= 10:
    filler = ""
    while len(filler) < pad:
        filler += word() + " "
    parts.append("<!-- " + filler[: pad - 10] + " -->\n")
else:
    parts.append(" " * pad)
page = "".join(parts) + tail
assert len(page) == n and page.isascii(), (len(page), n)
sys.stdout.write(page)
PY
}

# ---------------------------------------------------------------- cases

# A case is one coding at one level: its name is also its URL prefix.
# CASE_ENC is the Accept-Encoding wrk sends ("" for identity) and
# CASE_SERVERS the servers that run it.
CASES=()
declare -A CASE_ENC CASE_LEVEL CASE_SERVERS CASE_LABEL
for l in $LEVELS; do
	CASES+=("gzip$l")
	CASE_ENC[gzip$l]=gzip CASE_LEVEL[gzip$l]=$l CASE_SERVERS[gzip$l]="nginx tandem"
	CASE_LABEL[gzip$l]="gzip $l"
done
CASES+=("zstd$ZSTD_LEVEL" "br$BR_LEVEL")
CASE_ENC[zstd$ZSTD_LEVEL]=zstd CASE_LEVEL[zstd$ZSTD_LEVEL]=$ZSTD_LEVEL CASE_SERVERS[zstd$ZSTD_LEVEL]=tandem
CASE_LABEL[zstd$ZSTD_LEVEL]="zstd $ZSTD_LEVEL"
CASE_ENC[br$BR_LEVEL]=br CASE_LEVEL[br$BR_LEVEL]=$BR_LEVEL CASE_SERVERS[br$BR_LEVEL]=tandem
CASE_LABEL[br$BR_LEVEL]="br $BR_LEVEL"
if [[ $IDENTITY == 1 ]]; then
	CASES+=(identity)
	CASE_ENC[identity]="" CASE_LEVEL[identity]=- CASE_SERVERS[identity]="nginx tandem"
	CASE_LABEL[identity]="none (identity)"
fi

# ---------------------------------------------------------------- servers

start_nginx_gzip() {
	local port=$1 c
	{
		nginx_head nginx
		nginx_static
		cat <<EOF
	types { text/html html; }
	# text/html is always in gzip_types (listing it again only earns a
	# "duplicate MIME type" warning), so the page qualifies as it is.
	gzip_min_length 1000;
	gzip_vary on;
	server {
		listen 127.0.0.1:$port default_server;
		root $DOCROOT;
EOF
		for c in "${CASES[@]}"; do
			[[ ${CASE_SERVERS[$c]} == *nginx* && ${CASE_ENC[$c]} == gzip ]] || continue
			printf '\t\tlocation /%s/ { gzip on; gzip_comp_level %s; }\n' "$c" "${CASE_LEVEL[$c]}"
		done
		printf '\t}\n}\n'
	} >"$TMP/nginx.conf"
	start_bg "$TMP/nginx.out" "$NGINX" -p "$TMP" -c "$TMP/nginx.conf"
	NGINX_PID=$LAST_PID
	wait_ready nginx "$NGINX_PID" "http://127.0.0.1:$port/1k.bin" "$TMP/nginx-error.log"
}

start_tandem_compress() {
	local port=$1 c
	{
		cat <<EOF
pid_file $TMP/tandem.pid;
access_log off;
site _ {
	listen 127.0.0.1:$port default;
	root $DOCROOT;
EOF
		for c in "${CASES[@]}"; do
			[[ -n ${CASE_ENC[$c]} ]] || continue
			printf '\tlocation /%s/ { compress %s; compress_level %s %s; }\n' \
				"$c" "${CASE_ENC[$c]}" "${CASE_ENC[$c]}" "${CASE_LEVEL[$c]}"
		done
		printf '}\n'
	} >"$TMP/tandem.conf"
	"$TMP/tandem" check -c "$TMP/tandem.conf" >&2 || die "tandem check rejected $TMP/tandem.conf"
	start_bg "$TMP/tandem.log" "$TMP/tandem" run -c "$TMP/tandem.conf"
	TANDEM_PID=$LAST_PID
	wait_ready tandem "$TANDEM_PID" "http://127.0.0.1:$port/1k.bin" "$TMP/tandem.log"
}

# ---------------------------------------------------------------- setup

ensure_tools nginx:nginx-light wrk:wrk curl:curl zstd:zstd brotli:brotli
[[ -x $PY ]] || apt_install python3
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
bench_init
build_tandem || die "tandem does not build (./cmd/tandem)"

PAGE=$TMP/page.html
gen_page "$PAGE_SIZE" >"$PAGE"
PAGE_BYTES=$(wc -c <"$PAGE")
((PAGE_BYTES == PAGE_SIZE)) || die "generated page has $PAGE_BYTES bytes, want $PAGE_SIZE"
PAGE_SHA=$(sha256sum "$PAGE" | cut -c1-12)
for c in "${CASES[@]}"; do
	mkdir -p "$DOCROOT/$c"
	cp "$PAGE" "$DOCROOT/$c/page.html"
done
# Reference: what command-line zlib makes of the page (sanity for the ratio).
GZIP_CLI_5=$(gzip -5 -c "$PAGE" | wc -c)
chmod -R a+rX "$DOCROOT"

SERVERS=(nginx tandem)
declare -A PORT
for s in "${SERVERS[@]}"; do PORT[$s]=$(free_port); done
start_nginx_gzip "${PORT[nginx]}"
start_tandem_compress "${PORT[tandem]}"

# ---------------------------------------------------------------- checks

# check_case SERVER CASE: 200, the right Content-Encoding and Vary, a body
# that decodes to exactly the page, and keep-alive. Records the encoded
# size in SIZE[SERVER,CASE].
declare -A SIZE
check_case() {
	local s=$1 c=$2 enc=${CASE_ENC[$2]} url hdr=$TMP/check.hdr raw=$TMP/check.raw dec=$TMP/check.dec
	local args=() got ce vary conns
	url="http://127.0.0.1:${PORT[$s]}/$c/page.html"
	[[ -n $enc ]] && args=(-H "Accept-Encoding: $enc")
	got=$(curl -s -D "$hdr" -o "$raw" -w '%{http_code}' "${args[@]}" "$url")
	[[ $got == 200 ]] || die "$s $url: status $got, want 200"
	ce=$(awk -F': *' 'tolower($1) == "content-encoding" {sub(/\r$/, "", $2); print $2}' "$hdr")
	vary=$(awk -F': *' 'tolower($1) == "vary" {sub(/\r$/, "", $2); print $2}' "$hdr")
	[[ $ce == "$enc" ]] || die "$s $url: Content-Encoding '$ce', want '$enc'"
	case $enc in
	gzip) gzip -dc <"$raw" >"$dec" ;;
	zstd) zstd -qdc <"$raw" >"$dec" ;;
	br) brotli -dc <"$raw" >"$dec" ;;
	"") cp "$raw" "$dec" ;;
	esac || die "$s $url: body does not decode as $enc"
	cmp -s "$dec" "$PAGE" || die "$s $url: decoded body differs from the page"
	if [[ -n $enc ]]; then
		[[ ${vary,,} == *accept-encoding* ]] || die "$s $url: no Vary: Accept-Encoding (got '$vary')"
	fi
	SIZE[$s,$c]=$(wc -c <"$raw")
	conns=$(curl -s -o /dev/null -o /dev/null -w '%{num_connects}\n' "${args[@]}" "$url" "$url" | tail -n 1)
	[[ $conns == 0 ]] || die "$s $url: connection not kept alive between requests"
	rm -f "$hdr" "$raw" "$dec"
}
for c in "${CASES[@]}"; do
	for s in ${CASE_SERVERS[$c]}; do
		check_case "$s" "$c"
		log "$(printf 'check %-6s %-9s %-5s %6d bytes (%.1f%%), decodes to the page, keep-alive' \
			"$s" "$c" "${CASE_ENC[$c]:-none}" "${SIZE[$s,$c]}" "$(awk -v a="${SIZE[$s,$c]}" -v b="$PAGE_BYTES" 'BEGIN { print a / b * 100 }')")"
	done
done

# ---------------------------------------------------------------- noise
#
# As in static.sh and app.sh: before each run wait for the machine to be
# idle, and count the CPU used during the run by processes that are neither
# the servers nor wrk. Runs above NOISE_MAX % of the machine are repeated
# (at most twice, within NOISE_BUDGET) and left out of the medians when a
# clean run of the same case exists.

noise_init

# The servers' processes: nginx's master and its workers, tandem's one
# process. Fixed after start-up (nothing here forks later).
SRV_PIDS[nginx]="$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"
SRV_PIDS[tandem]=$TANDEM_PID

RESULTS=$TMP/results.tsv
: >"$RESULTS"

# run_wrk SERVER CASE ROUND DURATION: one measured run. Appends "case server
# round req/s p99_ms cpu_us/req foreign% wrk_us/req" to RESULTS unless
# ROUND is "warm".
run_wrk() {
	local s=$1 c=$2 round=$3 dur=$4 enc=${CASE_ENC[$2]} cpu wrkcpu
	local url="http://127.0.0.1:${PORT[$s]}/$c/page.html" out=$TMP/wrk-$s-$c-$round.txt
	local args=()
	[[ -n $enc ]] && args=(-H "Accept-Encoding: $enc")
	measure_wrk "round $round $s $c" "$out" "$round" "server_ticks $s" \
		-t"$THREADS" -c"$CONNS" -d"$dur" --timeout 10s --latency "${args[@]}" "$url"
	[[ $round == warm ]] && return
	cpu=$(us_per_req "${WRK_TICKS[1]}") wrkcpu=$(us_per_req "$WRK_CHILD")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$s" "$round" "$WRK_RPS" "$WRK_P99" "$cpu" "$WRK_FOREIGN" "$wrkcpu" >>"$RESULTS"
	log "$(printf 'round %s  %-9s %-6s %9s req/s  p99 %8s ms  %7s us CPU/req  other CPU %5s%%' \
		"$round" "$c" "$s" "$WRK_RPS" "$WRK_P99" "$cpu" "$WRK_FOREIGN")"
}

log "warm-up (1s per case and server)"
for c in "${CASES[@]}"; do
	for s in ${CASE_SERVERS[$c]}; do run_wrk "$s" "$c" warm 1s; done
done

# Cases rotate within a round; within a case the first server alternates
# from round to round, so drift lands on both servers alike.
NC=${#CASES[@]}
for ((r = 1; r <= ROUNDS; r++)); do
	for ((i = 0; i < NC; i++)); do
		c=${CASES[$(((i + r - 1) % NC))]}
		read -ra order <<<"${CASE_SERVERS[$c]}"
		if ((r % 2 == 0)) && ((${#order[@]} == 2)); then order=("${order[1]}" "${order[0]}"); fi
		for s in "${order[@]}"; do run_wrk "$s" "$c" "$r" "$DURATION"; done
	done
done

# ---------------------------------------------------------------- report

select_used
pct() { awk -v a="$1" -v b="$PAGE_BYTES" 'BEGIN { printf "%.1f%%", a / b * 100 }'; }

declare -A RPS P99 CPU
for c in "${CASES[@]}"; do
	for s in ${CASE_SERVERS[$c]}; do
		RPS[$c,$s]=$(results_median "$c" "$s" 4)
		P99[$c,$s]=$(results_median "$c" "$s" 5)
		CPU[$c,$s]=$(results_median "$c" "$s" 6)
	done
done

noise=$(noise_summary 7)
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
nginx_v=$({ "$NGINX" -v 2>&1 || true; } | sed 's/^nginx version: //')
wrk_v=$({ wrk -v 2>&1 || true; } | awk 'NR == 1 {print $2}')
zlib_v=$(dpkg-query -W -f '${Version}' zlib1g 2>/dev/null || echo "?")
kp_v=$(cd "$BENCH_REPO" && go list -m -f '{{.Version}}' github.com/klauspost/compress 2>/dev/null || echo "?")
br_v=$(cd "$BENCH_REPO" && go list -m -f '{{.Version}}' github.com/andybalholm/brotli 2>/dev/null || echo "?")

cat <<EOF
### Compression: gzip of a ${PAGE_BYTES}-byte HTML page, tandem vs nginx; tandem's zstd and br

$(date -u '+%Y-%m-%d %H:%M UTC') · $(nproc) CPUs (${cpu_model}) · $(go version | awk '{print $3}') · klauspost/compress ${kp_v} · andybalholm/brotli ${br_v} · ${nginx_v} with zlib ${zlib_v} · wrk ${wrk_v} · load average before the run: ${LOAD_BEFORE}

\`DURATION=$DURATION ROUNDS=$ROUNDS CONNS=$CONNS THREADS=$THREADS LEVELS="$LEVELS" ZSTD_LEVEL=$ZSTD_LEVEL BR_LEVEL=$BR_LEVEL IDENTITY=$IDENTITY NOISE_MAX=$NOISE_MAX NOISE_BUDGET=$NOISE_BUDGET bash bench/compress.sh\` — medians of $ROUNDS rounds; wrk -t$THREADS -c$CONNS, keep-alive, one \`Accept-Encoding\` coding per case. Page: generated HTML, sha256 ${PAGE_SHA}…, \`gzip -5\` (zlib CLI) makes it ${GZIP_CLI_5} bytes ($(pct "$GZIP_CLI_5")).
CPU used by other processes during the runs: $noise of the machine; runs repeated for exceeding ${NOISE_MAX}%: $REPEATED. "CPU/req" is the server's own utime+stime per response (nginx: master + workers).

| coding | server | response bytes | req/s | req/s range | p99 latency | CPU/req | runs used |
|---|---|--:|--:|--:|--:|--:|--:|
EOF
for c in "${CASES[@]}"; do
	for s in ${CASE_SERVERS[$c]}; do
		printf '| %s | %s | %s (%s) | %s | %s | %s ms | %s µs | %s |\n' "${CASE_LABEL[$c]}" "$s" \
			"${SIZE[$s,$c]}" "$(pct "${SIZE[$s,$c]}")" "$(fmt "${RPS[$c,$s]}" 0)" "$(results_range "$c" "$s")" \
			"$(fmt "${P99[$c,$s]}" 2)" "$(fmt "${CPU[$c,$s]}" 0)" "$(results_counts "$c" "$s")"
	done
done

cat <<EOF

| comparison | req/s ratio | CPU/req ratio | size ratio | p99 tandem / nginx |
|---|--:|--:|--:|--:|
EOF
for c in "${CASES[@]}"; do
	[[ ${CASE_SERVERS[$c]} == "nginx tandem" ]] || continue
	printf '| %s, tandem / nginx | **%s** | %s | %s | %s / %s ms |\n' "${CASE_LABEL[$c]}" \
		"$(ratio "${RPS[$c,tandem]}" "${RPS[$c,nginx]}")" "$(ratio "${CPU[$c,tandem]}" "${CPU[$c,nginx]}")" \
		"$(ratio "${SIZE[tandem,$c]}" "${SIZE[nginx,$c]}")" \
		"$(fmt "${P99[$c,tandem]}" 2)" "$(fmt "${P99[$c,nginx]}" 2)"
done
first=${LEVELS%% *}
for c in "zstd$ZSTD_LEVEL" "br$BR_LEVEL"; do
	printf '| tandem %s / nginx gzip %s | %s | %s | %s | %s / %s ms |\n' "${CASE_LABEL[$c]}" "$first" \
		"$(ratio "${RPS[$c,tandem]}" "${RPS[gzip$first,nginx]}")" "$(ratio "${CPU[$c,tandem]}" "${CPU[gzip$first,nginx]}")" \
		"$(ratio "${SIZE[tandem,$c]}" "${SIZE[nginx,gzip$first]}")" \
		"$(fmt "${P99[$c,tandem]}" 2)" "$(fmt "${P99[gzip$first,nginx]}" 2)"
done
echo
echo "Ratios are tandem over the other: req/s ≥ 1 and CPU/req, size ≤ 1 favour tandem."
if [[ -f $TMP/socket-errors ]]; then
	echo
	echo "wrk socket errors: $(tr '\n' ';' <"$TMP/socket-errors")"
fi

cat <<EOF

<details><summary>All runs</summary>

| round | case | server | req/s | p99 ms | server CPU µs/req | wrk CPU µs/req | other CPU % |
|--:|---|---|--:|--:|--:|--:|--:|
$(awk -F'\t' '{printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $3, $1, $2, $4, $5, $6, $8, $7}' "$RESULTS")

</details>
EOF
