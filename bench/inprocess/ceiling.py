"""In-process ceiling for bench/app.sh: call a WSGI app in a plain loop.

    /usr/bin/python3 bench/inprocess/ceiling.py DIR MODULE:CALLABLE [SECONDS]

No sockets, no HTTP parsing, no server: each iteration builds a fresh
wsgiref-style environ (the CGI variables a server passes for
`GET / HTTP/1.1` with the headers wrk sends, plus the wsgi.* keys and a new
wsgi.input), calls the app with a start_response that records status and
headers (and honours exc_info), and consumes the body iterable the way a
server does (iterate, join, close()). This is the most one Python process
can do for that app; times the number of cores it is the ideal a pre-fork
server could reach on this machine if serving cost nothing.

Prints one line: "<requests/s> <requests> <seconds>".
"""
import importlib
import io
import sys
import time


def load(spec):
    module, _, attr = spec.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def main():
    directory, spec = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
    sys.path.insert(0, directory)
    app = load(spec)

    base = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "HTTP_HOST": "127.0.0.1:8080",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }

    state = {}

    def start_response(status, headers, exc_info=None):
        if exc_info is not None and state.get("sent"):
            raise exc_info[1].with_traceback(exc_info[2])
        state["status"] = status
        state["headers"] = headers
        return state.setdefault("write", lambda data: None)

    def one():
        environ = dict(base)
        environ["wsgi.input"] = io.BytesIO(b"")
        result = app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return body

    # Check the answer once, as the HTTP benchmarks do, then warm up.
    body = one()
    if not state["status"].startswith("200") or not body:
        sys.exit(f"app answered {state['status']!r} with {len(body)} bytes")
    for _ in range(2000):
        one()

    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(1000):
            one()
        n += 1000
        now = time.perf_counter()
        if now >= deadline:
            break
    elapsed = now - start
    print(f"{n / elapsed:.0f} {n} {elapsed:.3f}")


if __name__ == "__main__":
    main()
