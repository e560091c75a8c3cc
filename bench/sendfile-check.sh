#!/usr/bin/env bash
# Proves tandem serves file bodies with sendfile(2) — the kernel copies page
# cache straight to the socket — rather than read()+write() through Go
# buffers. Any wrapper around the ResponseWriter or the file (a logging
# writer, a gzip layer, an io.Reader that hides *os.File) silently loses that
# path and only shows up as lower MiB/s, so check it directly:
#
#   bash bench/sendfile-check.sh              # checks tandem
#   SERVER=nginx bash bench/sendfile-check.sh # same check on nginx (sanity)
#
# Attaches `strace -f -e trace=sendfile` to the running server, fetches
# 10m.bin once with curl, and counts the sendfile calls and bytes they sent.
# Exit status 0 when sendfile carried (nearly) the whole body, 1 otherwise.
set -euo pipefail

SERVER=${SERVER:-tandem}

# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ $SERVER == nginx ]]; then
	ensure_tools strace:strace curl:curl nginx:nginx-light
else
	ensure_tools strace:strace curl:curl
fi
bench_init

PORT=$(free_port)
case $SERVER in
tandem)
	build_tandem || die "tandem does not build (./cmd/tandem)"
	start_tandem "$PORT"
	# -f on the one Go process follows all of its threads, including any
	# the runtime starts later.
	TRACE_PIDS=("$TANDEM_PID")
	;;
nginx)
	start_nginx "$PORT"
	# The workers, not the master, serve requests and already exist, so -f on
	# the master would not reach them; attach to each worker.
	mapfile -t TRACE_PIDS < <(pgrep -P "$NGINX_PID")
	;;
*) die "SERVER must be tandem or nginx, not $SERVER" ;;
esac

URL=http://127.0.0.1:$PORT/10m.bin
SIZE=$((10 * 1024 * 1024))
# One fetch first, outside the trace, so the file is in the page cache and
# any lazy set-up (open-file caches, goroutine pools) is done.
check_file "$SERVER" "$URL" "$SIZE" "$DOCROOT/10m.bin"

# -o keeps the syscall lines apart from strace's own "attached" notices on
# stderr, which we wait for below.
strace_args=(-f -e trace=sendfile -o "$TMP/strace.out")
for p in "${TRACE_PIDS[@]}"; do strace_args+=(-p "$p"); done
start_bg "$TMP/strace.log" strace "${strace_args[@]}"
STRACE_PID=$LAST_PID

# strace says "Process N attached" once per traced process; fetching before
# then would race the attach and undercount.
deadline=$((SECONDS + 10))
attached() { grep -c attached "$TMP/strace.log" 2>/dev/null || true; }
until (($(attached) >= ${#TRACE_PIDS[@]})); do
	kill -0 "$STRACE_PID" 2>/dev/null || {
		cat "$TMP/strace.log" >&2
		die "strace exited (ptrace not permitted? try as root or with CAP_SYS_PTRACE)"
	}
	((SECONDS < deadline)) || die "strace did not attach within 10s"
	sleep 0.1
done

check_file "$SERVER" "$URL" "$SIZE" "$DOCROOT/10m.bin"

# Detach (SIGINT makes strace flush and let the tracees run on), then count.
kill -INT "$STRACE_PID"
wait "$STRACE_PID" 2>/dev/null || true

# Lines look like `123 sendfile(7, 9, [0] => [4194304], 4194304) = 4194304`,
# possibly split into "<unfinished ...>" / "<... sendfile resumed>" halves
# when threads interleave; the result is on the line with " = ".
read -r calls bytes < <(awk '/sendfile/ && / = [0-9]+/ { n++; sub(/.* = /, ""); b += $1 }
	END { printf "%d %d\n", n, b }' "$TMP/strace.out")

echo "sendfile check ($SERVER): GET /10m.bin ($SIZE bytes) made $calls successful sendfile calls sending $bytes bytes"
# Headers go out with write(); the body should all be sendfile. Allow a small
# slack: net/http copies the first 512 bytes of a body along with the
# headers before it switches to sendfile (golang.org/issue/5660), so Go
# servers show SIZE-512 here and nginx shows SIZE.
if ((calls > 0 && bytes >= SIZE - 65536)); then
	echo "OK: the body went out through sendfile (zero-copy path in effect)"
else
	echo "FAIL: the body did not go through sendfile; see $TMP/strace.out (KEEP=1 keeps it)"
	exit 1
fi
