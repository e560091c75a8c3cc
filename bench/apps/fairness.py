"""App for bench/fairness.sh: one slow endpoint and one fast one."""
import time


def application(environ, start_response):
    if environ.get("PATH_INFO") == "/slow":
        time.sleep(0.5)
        body = b"slow\n"
    else:
        body = b"fast\n"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
