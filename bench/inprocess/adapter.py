"""Python-side cost of tandem's worker adapter, without sockets or tandem.

    /usr/bin/python3 bench/inprocess/adapter.py DIR MODULE:CALLABLE [SECONDS]

Drives tandem_worker.handle() (appserver/python/tandem_worker.py, the code
each tandem worker runs per request) with an in-memory connection: an H
frame's uwsgi vars as tandem's environ.go sends them for `GET /` from wrk
are decoded into the environ, the app runs, the response frames are encoded
and "sent" to a list that is thrown away, and the E frame is drained. Next
to ceiling.py (the bare app call) this shows how many microseconds per
request the adapter itself costs in Python; the rest of tandem's per-request
cost is syscalls, scheduling and the Go side.

Prints: "<adapter requests/s> <bare app requests/s> <adapter µs/req> <app µs/req>".
"""
import importlib
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "appserver", "python"))
import tandem_worker as tw  # noqa: E402


class MemConn(tw.Conn):
    """A Conn whose only inbound frame is E (end of an empty body)."""

    def __init__(self):
        self.pushed = None
        self.eof = False
        self.sent = 0
        self.e = (b"E", 1, b"")

    def read_frame(self):
        return self.e

    def poll_frame(self):
        return None

    def send(self, data):
        self.sent += len(data)


def load(spec):
    module, _, attr = spec.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def rate(fn, seconds):
    for _ in range(2000):
        fn()
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(1000):
            fn()
        n += 1000
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def main():
    directory, spec = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
    sys.path.insert(0, directory)
    app = load(spec)
    # What tandem's environ.go sends for wrk's `GET / HTTP/1.1` (Host only).
    payload = tw.encode_vars([
        ("REQUEST_METHOD", "GET"), ("SCRIPT_NAME", ""), ("PATH_INFO", "/"),
        ("QUERY_STRING", ""), ("SERVER_NAME", "127.0.0.1"), ("SERVER_PORT", "8080"),
        ("SERVER_PROTOCOL", "HTTP/1.1"), ("REMOTE_ADDR", "127.0.0.1"),
        ("REMOTE_PORT", "40000"), ("HTTP_HOST", "127.0.0.1:8080"),
        ("REQUEST_URI", "/"), ("wsgi.url_scheme", "http"),
    ])
    base = {
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr, "wsgi.multithread": False,
        "wsgi.multiprocess": True, "wsgi.run_once": False,
        "wsgi.file_wrapper": tw.FileWrapper, "wsgi.input_terminated": True,
        "SCRIPT_NAME": "", "QUERY_STRING": "",
    }
    conn = MemConn()
    tw.handle(conn, app, base, 1, payload)
    if not conn.sent:
        sys.exit("the adapter sent nothing")

    def adapter():
        tw.handle(conn, app, base, 1, payload)

    decoded = tw.decode_vars(payload)

    def bare():
        environ = base.copy()
        environ.update(decoded)
        result = app(environ, lambda s, h, e=None: None)
        b"".join(result)
        close = getattr(result, "close", None)
        if close is not None:
            close()

    a = rate(adapter, seconds)
    b = rate(bare, seconds)
    print(f"{a:.0f} {b:.0f} {1e6 / a:.2f} {1e6 / b:.2f}")


if __name__ == "__main__":
    main()
