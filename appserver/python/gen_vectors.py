"""Regenerate ../testdata/vectors.json from the field values below.

    /usr/bin/python3 appserver/python/gen_vectors.py

Run it only when adding vectors: the file is the contract the Go and Python
codecs are both tested against, and the two protocol.md examples in it are
also checked against the literal hex of the document by test_worker.py.
Strings in "vars" and "headers" are latin-1: each character is one byte.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tandem_worker as tw  # noqa: E402

V = []


def add(name, ftype, stream, **fields):
    if 'vars' in fields:
        payload = tw.encode_vars(fields['vars'])
        fields['vars'] = [list(p) for p in fields['vars']]
    elif 'status' in fields:
        payload = tw.encode_head(fields['status'], fields['headers'])
        fields['headers'] = [list(p) for p in fields['headers']]
    elif 'offset' in fields:
        payload = tw.encode_file(fields['offset'], fields['count'])
    else:
        payload = fields.pop('data')
        fields['data_hex'] = payload.hex()
    raw = tw.frame(ftype.encode(), stream, payload)
    V.append(dict(name=name, hex=raw.hex(), type=ftype, stream=stream, **fields))


add('protocol.md: H GET /hi?x=1', 'H', 7, vars=[
    ('REQUEST_METHOD', 'GET'), ('PATH_INFO', '/hi'), ('QUERY_STRING', 'x=1')])
add('protocol.md: E end of body', 'E', 7, data=b'')
add('protocol.md: S 200 text/plain', 'S', 7, status=200,
    headers=[('Content-Type', 'text/plain')])
add('H full request head, https', 'H', 1, vars=[
    ('REQUEST_METHOD', 'POST'), ('SCRIPT_NAME', ''), ('PATH_INFO', '/form'),
    ('QUERY_STRING', ''), ('SERVER_NAME', 'example.com'), ('SERVER_PORT', '443'),
    ('SERVER_PROTOCOL', 'HTTP/1.1'), ('REMOTE_ADDR', '192.0.2.1'),
    ('REMOTE_PORT', '51234'), ('CONTENT_TYPE', 'application/x-www-form-urlencoded'),
    ('CONTENT_LENGTH', '11'), ('HTTP_HOST', 'example.com'),
    ('HTTP_ACCEPT', 'text/html, application/json'), ('REQUEST_URI', '/form'),
    ('wsgi.url_scheme', 'https')])
add('H empty value and latin-1 (non-ASCII) bytes', 'H', 2, vars=[
    ('QUERY_STRING', ''), ('PATH_INFO', '/caf\u00e9/\u00ff'),
    ('HTTP_X_NAME', 'J\u00fcrgen')])
add('H value of 65535 bytes (maximum)', 'H', 3, vars=[
    ('HTTP_X_BIG', 'a' * 65535), ('PATH_INFO', '/')])
add('H empty vars block', 'H', 4, vars=[])
add('B body chunk', 'B', 1, data=b'hello=world')
add('E right after H (no body)', 'E', 4294967295, data=b'')
add('A abort', 'A', 7, data=b'')
add('R ready', 'R', 0, data=b'12345')
add('S repeated Set-Cookie', 'S', 9, status=302, headers=[
    ('Location', '/login'), ('Set-Cookie', 'a=1; Path=/'),
    ('Set-Cookie', 'b=2; HttpOnly'), ('Content-Length', '0')])
add('S 404 without headers', 'S', 9, status=404, headers=[])
add('S header with empty value and latin-1 byte', 'S', 9, status=200, headers=[
    ('X-Empty', ''), ('X-Latin', 'd\u00e9j\u00e0')])
add('D binary bytes', 'D', 7, data=bytes([0, 1, 0x0d, 0x0a, 0x7f, 0x80, 0xfe, 0xff]))
add('D text', 'D', 7, data=b'Internal Server Error')
add('F whole file from offset 0', 'F', 7, offset=0, count=0xFFFFFFFFFFFFFFFF)
add('F range', 'F', 7, offset=1024, count=4096)
add('Z response end', 'Z', 7, data=b'')
add('X response error (UTF-8)', 'X', 7, data='ValueError: caf\u00e9 failed'.encode())
add('r zygote ready', 'r', 0, data=b'4242')
add('i import error', 'i', 0, data=b'Traceback (most recent call last):\n'
    b'ModuleNotFoundError: No module named \'nope\'\n')
add('f fork worker 3', 'f', 3, data=b'')
add('e fork error for worker 3', 'e', 3, data=b'fork: [Errno 11] Resource temporarily unavailable')

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'testdata', 'vectors.json')
with open(out, 'w') as f:
    # One vector per line: diffs stay readable.
    f.write('[\n' + ',\n'.join(json.dumps(v, ensure_ascii=True) for v in V) + '\n]\n')
print('wrote %d vectors to %s' % (len(V), os.path.normpath(out)))
