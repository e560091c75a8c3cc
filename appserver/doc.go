// Package appserver is tandem's application server: the gunicorn half. It
// supervises pools of pre-forked Python WSGI workers and serves each
// request on a worker that is actually free; and pools of any program that
// speaks HTTP (`command ARG...;`: uvicorn, a Node server), each worker told
// where to listen by $TANDEM_SOCKET or $PORT.
//
// # What it owns
//
// A Manager has one Pool per `app` block. Each Pool has one arbiter
// goroutine (arbiter.go) that makes every decision about the worker table:
// spawns, exits, failed or limit-reaching requests, ticks and commands
// (reload, scale, shutdown) all arrive as events. The one exception is the
// hand-off fast path (handoff.go): a request goroutine takes an idle
// worker, joins the queue, or gives a worker that needs no decision
// straight to the oldest waiter itself, under the lock the arbiter holds
// for each of its turns, with the arbiter's own code. Each
// worker moves through the state machine in worker.go (Starting, Idle,
// Busy, Draining, Exited; illegal moves are errors). dispatch.go is the
// idle list plus the bounded FIFO queue; supervise.go marks workers past
// their limits (timeout, max_requests, max_lifetime, max_memory) and
// scales; exit.go gives every exit a typed reason that is logged with the
// exit code or signal. Processes are started behind the launcher/process
// seam (spawn.go, zygote.go, command.go), which tests replace with fakes.
// proxy.go is the request path; the wire format is in package wire and
// docs/protocol.md.
//
// Command workers (`command ARG...;`) share all of this — state machine,
// supervision, exit reasons, generations, scaling, shutdown — and differ
// in three places: commandLauncher (command.go) execs the program in its
// own process group and waits until its socket or port accepts a
// connection; dispatch (concurrent.go) lets a busy command worker take
// more requests, picking the one with the fewest in flight; and the
// request path (command_proxy.go) is an HTTP reverse proxy that streams
// both ways, answers 504 past `timeout` without killing the worker, and
// sends a request whose connection was refused to another worker.
//
// Left to others: parsing the config (conf), routing a request to a pool
// and error pages (edge), wiring SIGHUP/SIGTTIN/SIGTTOU (cmd/tandem), the
// Python side of the protocol (python/tandem_worker.py).
//
// # Lifecycle
//
// NewManager validates; Start writes the embedded worker script into the
// private runtime dir, marks the process a child subreaper and boots a
// first generation per app: with preload a zygote imports the app once and
// forks workers on request (double fork, so they are re-parented to
// tandem and waited for with pidfds); without preload each worker is a
// fresh interpreter. Start returns when every pool's workers are ready, or
// with the import error's traceback. Reload boots a new generation and
// switches dispatch only when all its workers are ready; old workers finish
// their request and exit (reason Reload); if the new code fails to import,
// the old generation keeps serving. Shutdown stops dispatch, lets requests
// in flight finish until graceful_timeout or the context's deadline, then
// kills, and returns once everything is reaped.
//
// # Request path
//
// Serve reads the whole request body at the edge first (memory, then an
// unlinked file in the runtime dir), then takes a worker. Responses are
// read from the worker as fast as it writes: complete or
// Content-Length-declared ones are buffered and the worker is released
// before the client is written to; responses without a length that arrive
// over time (WSGI generators) are streamed chunk by chunk and hold their
// worker while the client reads — the documented trade-off for keeping
// streaming responses streaming.
//
// # Pitfalls
//
//   - tandem becomes a child subreaper: any process a worker double-forks
//     is re-parented to tandem too. Such orphans are reaped by reaper.go
//     once they have been zombies for one scan interval (30 s) with nobody
//     waiting on them, and logged with their exit status.
//   - A worker that dies after it was forked but before it sends R (its
//     pid unknown) is not waited for by its pool; the reaper takes it.
//   - `timeout` covers the whole exchange, like gunicorn's sync workers:
//     long streamed responses (server-sent events) need a larger timeout.
//   - A zygote that dies is replaced at the next spawn, which re-imports
//     the code now on disk: in effect an unannounced reload (logged).
//   - max_memory has no jitter: the one-recycle-at-a-time rule is what
//     spreads memory recycling.
//   - Import failures exit with code 3 and stop respawning for that
//     generation; the pool answers 503 until a reload fixes the code.
//   - A command worker that exits (or does not listen within 30 s) before
//     any worker of its generation was ever ready fails the generation
//     like an import error; afterwards the same is a crash, respawned with
//     backoff.
//   - max_memory of a command worker is the RSS of the process tandem
//     started, not of its children.
//   - $PORT is a port that was free when tandem picked it. Another
//     process may bind it first; the worker then fails to start (and is
//     respawned with another port), but until its exit is seen, the
//     readiness probe and requests may reach that other process. Prefer
//     $TANDEM_SOCKET.
package appserver
