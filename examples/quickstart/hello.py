"""The quick start's app: a WSGI application using only the standard library.

tandem imports it once (preload) and forks workers from it; the edge serves
the static files in public/ and sends /app/ here.
"""
import html
import os
import time
from urllib.parse import parse_qs

STARTED = time.time()


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/app/stream":
        return stream(environ, start_response)
    if environ["REQUEST_METHOD"] == "POST":
        size = int(environ.get("CONTENT_LENGTH") or 0)
        fields = parse_qs(environ["wsgi.input"].read(size).decode("utf-8", "replace"))
        name = fields.get("name", ["stranger"])[0]
        body = f"<p>Hello, {html.escape(name)}!</p>"
    else:
        body = (
            "<p>Hello from a Python worker.</p>"
            f"<p>pid {os.getpid()}, app imported {time.time() - STARTED:.1f}s ago</p>"
            '<form method="post"><input name="name" placeholder="your name">'
            "<button>Say hello</button></form>"
            '<p><a href="/app/stream">a streamed response</a></p>'
        )
    page = f"<!doctype html><title>hello</title><h1>tandem app</h1>{body}".encode()
    start_response("200 OK", [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(page))),
    ])
    return [page]


def stream(environ, start_response):
    """A generator response: each line goes to the client as it is made."""
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    for i in range(5):
        yield f"line {i}\n".encode()
        time.sleep(0.2)
