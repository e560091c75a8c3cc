"""Test app for test_worker.py: one route per behaviour under test."""
import hashlib
import io
import json
import os
import sys
import tempfile
import time
from urllib.parse import parse_qs

CLOSED = []          # one entry per close() of a tracked iterable
FILE_DATA = bytes(range(256)) * 64          # 16 KiB


class Tracked:
    """An iterable with close(), as PEP 3333 servers must call it."""

    def __init__(self, chunks, delay=0.0):
        self.chunks, self.delay = chunks, delay

    def __iter__(self):
        for c in self.chunks:
            if self.delay:
                time.sleep(self.delay)
            yield c

    def close(self):
        CLOSED.append(1)


def _text(start_response, body, status='200 OK', extra=()):
    start_response(status, [('Content-Type', 'text/plain'),
                            ('Content-Length', str(len(body)))] + list(extra))
    return [body]


def _read_body(inp, mode):
    """Read wsgi.input the way `mode` says; returns the list of pieces."""
    pieces = []
    if mode == 'read':
        pieces.append(inp.read())
    elif mode.startswith('readn'):
        n = int(mode[5:])
        while True:
            p = inp.read(n)
            pieces.append(p)
            if not p:
                break
    elif mode.startswith('readlines'):
        pieces = inp.readlines(int(mode[9:])) if mode[9:] else inp.readlines()
    elif mode.startswith('readline'):
        n = int(mode[8:]) if mode[8:] else -1
        while True:
            p = inp.readline(n) if n >= 0 else inp.readline()
            pieces.append(p)
            if not p:
                break
    elif mode == 'iter':
        pieces = list(inp)
    elif mode.startswith('partial'):
        pieces.append(inp.read(int(mode[7:])))
    return pieces


def app(environ, start_response):
    path = environ['PATH_INFO']
    q = {k: v[0] for k, v in parse_qs(environ.get('QUERY_STRING', '')).items()}

    if path == '/hello':
        return _text(start_response, b'hello world',
                     extra=[('Set-Cookie', 'a=1'), ('Set-Cookie', 'b=2')])
    if path == '/echo':
        pieces = _read_body(environ['wsgi.input'], q.get('mode', 'read'))
        body = json.dumps({'lens': [len(p) for p in pieces],
                           'sha': hashlib.sha256(b''.join(pieces)).hexdigest()})
        return _text(start_response, body.encode())
    if path.startswith('/environ'):
        out = {}
        for k, v in environ.items():
            out[k] = v if isinstance(v, (str, bool, int)) else repr(type(v))
        out['wsgi.version'] = list(environ['wsgi.version'])
        out['path_bytes'] = environ['PATH_INFO'].encode('latin-1').hex()
        return _text(start_response, json.dumps(out).encode())
    if path == '/gen':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return Tracked([b'one ', b'', b'two ', b'three'])
    if path == '/closed':
        return _text(start_response, str(len(CLOSED)).encode())
    if path == '/slow':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return Tracked([b'tick\n'] * 500, delay=0.02)
    if path == '/sleep':
        time.sleep(float(q.get('t', '0.5')))
        return _text(start_response, b'slept')
    if path == '/big':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return iter([b'\xab' * int(q.get('n', '200000'))])
    if path == '/write':
        write = start_response('200 OK', [('Content-Type', 'text/plain')])
        write(b'written ')
        write(b'')
        return [b'returned']
    if path == '/raise-before':
        raise RuntimeError('boom before headers')
    if path == '/raise-after':
        def gen():
            start_response('200 OK', [('Content-Type', 'text/plain')])
            yield b'partial'
            raise RuntimeError('boom after headers')
        return gen()
    if path == '/excinfo-before':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        try:
            raise ValueError('oops')
        except ValueError:
            start_response('503 Service Unavailable',
                           [('Content-Type', 'text/plain')], sys.exc_info())
        return [b'replaced']
    if path == '/excinfo-after':
        def gen():
            start_response('200 OK', [('Content-Type', 'text/plain')])
            yield b'sent'
            try:
                raise ValueError('too late')
            except ValueError:
                start_response('500 Internal Server Error',
                               [('Content-Type', 'text/plain')], sys.exc_info())
            yield b'never'
        return gen()
    if path == '/twice':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'unreachable']
    if path == '/bad-header':
        start_response('200 OK', [('Content-Type', 'text/plain'), ('X-Evil', 'a\r\nSet-Cookie: x=1')])
        return [b'unreachable']
    if path == '/bad-status':
        start_response('OK', [('Content-Type', 'text/plain')])
        return [b'unreachable']
    if path == '/bad-header-name':
        start_response('200 OK', [('Bad Name', 'x')])
        return [b'unreachable']
    if path == '/bad-header-nul':
        start_response('200 OK', [('X-Nul', 'a\0b')])
        return [b'unreachable']
    if path == '/bad-length':
        start_response('200 OK', [('Content-Length', '1_0')])
        return [b'unreachable']
    if path == '/conflicting-length':
        start_response('200 OK', [('Content-Length', '3'), ('Content-Length', '4')])
        return [b'unreachable']
    if path == '/spaced-length':
        start_response('200 OK', [('Content-Length', ' 5 ')])
        return [b'12345']
    if path == '/file':
        f = tempfile.TemporaryFile()
        f.write(FILE_DATA)
        f.seek(int(q.get('offset', '0')))
        headers = [('Content-Type', 'application/octet-stream')]
        if 'cl' in q:
            headers.append(('Content-Length', q['cl']))
        start_response('200 OK', headers)
        return environ['wsgi.file_wrapper'](f, 4096)
    if path == '/filelike':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return environ['wsgi.file_wrapper'](io.BytesIO(FILE_DATA), 5000)
    if path == '/short':
        start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '10')])
        return iter([b'12345'])
    if path in ('/short-list', '/short-list2'):
        # Lists take the coalescing path, which ends the body itself.
        start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '10')])
        return [b'12345'] if path == '/short-list' else [b'12', b'345']
    if path == '/long':
        start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '5')])
        return iter([b'123', b'456789', b'more'])
    if path == '/pid':
        return _text(start_response, str(os.getpid()).encode())
    return _text(start_response, b'not found', '404 Not Found')
