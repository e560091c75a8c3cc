"""Tests of tandem_worker.py: codec vs the shared vectors, then real worker
processes driven over a socketpair, playing tandem's (the edge's) side.

    /usr/bin/python3 -m unittest discover -s appserver/python -v
"""
import ctypes
import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from collections import deque

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True     # keep __pycache__ out of the source tree
import tandem_worker as tw  # noqa: E402

PYTHON = '/usr/bin/python3'
WORKER = os.path.join(HERE, 'tandem_worker.py')
APPS = os.path.join(HERE, 'testapps')
VECTORS = os.path.join(HERE, '..', 'testdata', 'vectors.json')


def have(module):
    r = subprocess.run([PYTHON, '-c', 'import ' + module], capture_output=True)
    return r.returncode == 0


# ---------------------------------------------------------------- codec

def vector_payload(v):
    if 'vars' in v:
        return tw.encode_vars(v['vars'])
    if 'status' in v:
        return tw.encode_head(v['status'], v['headers'])
    if 'offset' in v:
        return tw.encode_file(v['offset'], v['count'])
    return bytes.fromhex(v['data_hex'])


class CodecTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(VECTORS) as f:
            cls.vectors = json.load(f)

    def test_vectors_decode_and_encode(self):
        groups = ({'vars'}, {'status', 'headers'}, {'data_hex'}, {'offset', 'count'})
        for v in self.vectors:
            with self.subTest(v['name']):
                extra = set(v) - {'name', 'hex', 'type', 'stream'}
                self.assertIn(extra, groups)
                raw = bytes.fromhex(v['hex'])
                ftype, stream, payload = tw.decode_frame(raw)
                self.assertEqual(ftype, v['type'].encode())
                self.assertEqual(stream, v['stream'])
                if 'vars' in v:
                    self.assertEqual(tw.decode_vars(payload), [tuple(p) for p in v['vars']])
                elif 'status' in v:
                    self.assertEqual(tw.decode_head(payload),
                                     (v['status'], [tuple(p) for p in v['headers']]))
                elif 'offset' in v:
                    self.assertEqual(tw.decode_file(payload), (v['offset'], v['count']))
                else:
                    self.assertEqual(payload.hex(), v['data_hex'])
                again = tw.frame(ftype, stream, vector_payload(v))
                self.assertEqual(again.hex(), v['hex'])

    def test_required_vectors_present(self):
        names = ' '.join(v['name'] for v in self.vectors)
        types = {v['type'] for v in self.vectors}
        self.assertTrue(set('HBEASDFZXRrife') <= types, types)
        self.assertIn('Set-Cookie', names)
        self.assertIn('65535', names)
        big = [v for v in self.vectors if '65535' in v['name']][0]
        self.assertIn(65535, [len(val) for _, val in big['vars']])

    def test_protocol_md_examples(self):
        # Literal hex from docs/protocol.md.
        doc = {
            'protocol.md: H GET /hi?x=1':
                '48 07000000 38000000 0e00 524551554553545f4d4554484f44 0300 474554'
                '0900 504154485f494e464f 0300 2f6869 0c00 51554552595f535452494e47'
                '0300 783d31',
            'protocol.md: E end of body': '45 07000000 00000000',
            'protocol.md: S 200 text/plain':
                '53 07000000 1c000000 c800 0c00 436f6e74656e742d54797065 0a00'
                '746578742f706c61696e',
        }
        by_name = {v['name']: v for v in self.vectors}
        for name, hx in doc.items():
            self.assertEqual(by_name[name]['hex'], hx.replace(' ', ''))

    def test_oversized_var_rejected(self):
        with self.assertRaises(ValueError):
            tw.encode_vars([('K', 'v' * 65536)])
        with self.assertRaises(tw.ProtocolError):
            tw.decode_vars(b'\x05\x00ab')

    def test_environ_decoder_matches_decode_vars(self):
        pairs = [('REQUEST_METHOD', 'GET'), ('PATH_INFO', '/caf\xe9'), ('E', ''),
                 ('', 'empty key'), ('HTTP_X_LONG', 'v' * 300), ('K' * 256, 'x' * 65535)]
        payload = tw.encode_vars(pairs)
        env = {}
        tw._environ_into(payload, env)
        self.assertEqual(env, dict(pairs))
        self.assertEqual(tw.decode_vars(payload), pairs)
        for cut in (1, 2, 3, 17, 18, 19, len(payload) - 1):
            with self.assertRaises(tw.ProtocolError):
                tw._environ_into(payload[:cut], {})
            with self.assertRaises(tw.ProtocolError):
                tw.decode_vars(payload[:cut])

    def test_start_response_head_is_encode_head(self):
        class Sink:
            def send(self, data):
                pass
        cases = [('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '13')]),
                 ('404 Not Found', []),
                 ('299 Odd', [('Set-Cookie', 'a=1'), ('Set-Cookie', 'b=2'),
                              ('X-Latin1', 'caf\xe9'), ('X-Long', 'y' * 256),
                              ('X-Longest', 'z' * 65535)])]
        for status, headers in cases:
            resp = tw.Response(Sink(), 7, None, False)
            resp.start_response(status, headers)
            self.assertEqual(resp.head, tw.frame(b'S', 7, tw.encode_head(int(status[:3]), headers)))
        for headers, exc in (([('X', 'z' * 65536)], ValueError),
                             ([('X', '\u20ac')], UnicodeEncodeError),
                             ([('X', 'a\nb')], ValueError), ([('X', 1)], TypeError),
                             ([('', 'x')], ValueError), ([('Bad Name', 'x')], ValueError),
                             ([('X:Y', 'x')], ValueError)):
            with self.assertRaises(exc):
                tw.Response(Sink(), 7, None, False).start_response('200 OK', headers)
        for status in ('20 OK', '2000 OK', '099 No', 'abc'):
            with self.assertRaises(ValueError):
                tw.Response(Sink(), 7, None, False).start_response(status, [])


# ---------------------------------------------------------------- the edge side

class Reply:
    def __init__(self):
        self.status = None
        self.headers = []
        self.body = b''
        self.frames = []
        self.error = None
        self.files = []


class Edge:
    """tandem's end of a worker (or zygote) socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.fds = deque()
        self.next_stream = 1
        self.queue = None            # (send, take): the worker's pipelining queue

    def read_frame(self, timeout=10):
        self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 9:
                ftype, stream, n = tw.HDR.unpack_from(self.buf)
                if len(self.buf) >= 9 + n:
                    payload = bytes(self.buf[9:9 + n])
                    del self.buf[:9 + n]
                    if ftype == b'R':
                        assert len(self.fds) == 2, 'R without the queue: %r' % self.fds
                        self.queue = tuple(socket.socket(fileno=self.fds.popleft()) for _ in range(2))
                    return ftype, stream, payload
            data, fds, _, _ = socket.recv_fds(self.sock, 1 << 20, 4)
            self.fds.extend(fds)
            if not data:
                raise EOFError
            self.buf += data

    def send(self, ftype, stream, payload=b''):
        self.sock.sendall(tw.frame(ftype, stream, payload))

    def send_request(self, method='GET', path='/', query='', body=None, chunk=65536,
                     headers=(), extra=(), stream=None):
        if stream is None:
            stream = self.next_stream
            self.next_stream += 1
        env = [('REQUEST_METHOD', method), ('SCRIPT_NAME', ''),
               ('PATH_INFO', path), ('QUERY_STRING', query),
               ('SERVER_NAME', 'localhost'), ('SERVER_PORT', '8080'),
               ('SERVER_PROTOCOL', 'HTTP/1.1'), ('REMOTE_ADDR', '127.0.0.1'),
               ('REMOTE_PORT', '40000'), ('HTTP_HOST', 'localhost:8080'),
               ('REQUEST_URI', path + ('?' + query if query else '')),
               ('wsgi.url_scheme', 'http')]
        if body is not None:
            env += [('CONTENT_TYPE', 'application/octet-stream'),
                    ('CONTENT_LENGTH', str(len(body)))]
        env += list(extra)
        out = [tw.frame(b'H', stream, tw.encode_vars(env))]
        if body:
            sizes = chunk if callable(chunk) else (lambda: chunk)
            i = 0
            while i < len(body):
                n = sizes()
                out.append(tw.frame(b'B', stream, body[i:i + n]))
                i += n
        out.append(tw.frame(b'E', stream))
        self.sock.sendall(b''.join(out))
        return stream

    def read_reply(self, stream, timeout=10):
        r = Reply()
        while True:
            ftype, s, payload = self.read_frame(timeout)
            assert s == stream, (ftype, s, stream)
            r.frames.append((ftype, payload))
            if ftype == b'S':
                r.status, r.headers = tw.decode_head(payload)
            elif ftype == b'D':
                assert 1 <= len(payload) <= 65536
                r.body += payload
            elif ftype == b'F':
                offset, count = tw.decode_file(payload)
                fd = self.fds.popleft()
                size = os.fstat(fd).st_size
                data = os.pread(fd, size - offset if count == tw.TO_EOF else count, offset)
                os.close(fd)
                r.files.append((offset, count))
                r.body += data
            elif ftype == b'Z':
                return r
            elif ftype == b'X':
                r.error = payload.decode()
                return r
            else:
                raise AssertionError('unexpected frame %r' % ftype)

    def request(self, *a, **kw):
        timeout = kw.pop('timeout', 10)
        return self.read_reply(self.send_request(*a, **kw), timeout)

    def pipeline(self, method='GET', path='/', body=None):
        """Queue a request as tandem pipelines one: one message on the
        worker's queue. Returns its stream."""
        stream = self.next_stream
        self.next_stream += 1
        env = [('REQUEST_METHOD', method), ('PATH_INFO', path), ('QUERY_STRING', ''),
               ('SERVER_NAME', 'localhost'), ('SERVER_PORT', '8080'),
               ('SERVER_PROTOCOL', 'HTTP/1.1'), ('wsgi.url_scheme', 'http')]
        if body is not None:
            env += [('CONTENT_LENGTH', str(len(body)))]
        msg = [tw.frame(b'H', stream, tw.encode_vars(env))]
        if body:
            msg += [tw.frame(b'B', stream, body[:3]), tw.frame(b'B', stream, body[3:])]
        msg.append(tw.frame(b'E', stream))
        self.queue[0].send(b''.join(msg))
        return stream

    def take_back(self):
        """Take the oldest queued request back, as tandem does; its stream,
        or None if the worker has read it."""
        try:
            msg = self.queue[1].recv(1 << 16, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return None
        return tw.HDR.unpack_from(msg)[1]


class Proc:
    """A worker/zygote subprocess whose fd 3 is the child end of a socketpair."""

    def __init__(self, app, mode='worker', pyflags=(), chdir=APPS):
        parent, child = socket.socketpair()
        self.child_inode = os.fstat(child.fileno()).st_ino
        self.stderr = tempfile.TemporaryFile()
        cfd = child.fileno()
        args = [PYTHON, '-u', '-B', *pyflags, WORKER, mode, '--app', app]
        if chdir:
            args += ['--chdir', chdir]
        # close_fds=False: fd 3 is made by dup2 in the child, and close_fds
        # would close it again after preexec_fn.
        self.p = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                  stdout=self.stderr, stderr=self.stderr,
                                  close_fds=False, preexec_fn=lambda: os.dup2(cfd, 3))
        child.close()
        self.edge = Edge(parent)

    def ready(self, ftype=b'R'):
        t, stream, payload = self.edge.read_frame()
        assert (t, stream) == (ftype, 0), (t, stream, payload, self.err())
        assert int(payload) > 0
        return int(payload)

    def err(self):
        self.stderr.seek(0)
        return self.stderr.read().decode('utf-8', 'replace')

    def wait(self, timeout=10):
        return self.p.wait(timeout)

    def close(self):
        self.edge.sock.close()
        for s in self.edge.queue or ():
            s.close()
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.stderr.close()


# ---------------------------------------------------------------- worker mode

BODY = b''.join(b'line %d %s\n' % (i, b'x' * (i % 97)) for i in range(2000)) + b'no newline at end'


def expected_pieces(mode, body=BODY):
    """What a real file does for the same calls (io.BytesIO semantics)."""
    f = io.BytesIO(body)
    pieces = []
    if mode == 'read':
        return [f.read()]
    if mode.startswith('readn'):
        while True:
            pieces.append(f.read(int(mode[5:])))
            if not pieces[-1]:
                return pieces
    if mode.startswith('readlines'):
        return f.readlines(int(mode[9:])) if mode[9:] else f.readlines()
    if mode.startswith('readline'):
        n = int(mode[8:]) if mode[8:] else -1
        while True:
            pieces.append(f.readline(n))
            if not pieces[-1]:
                return pieces
    if mode == 'iter':
        return list(f)
    if mode.startswith('partial'):
        return [f.read(int(mode[7:]))]


class WorkerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.w = Proc('basic:app')
        cls.pid = cls.w.ready()

    @classmethod
    def tearDownClass(cls):
        cls.w.close()

    def setUp(self):
        self.edge = self.w.edge

    def test_get(self):
        r = self.edge.request('GET', '/hello')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers, [('Content-Type', 'text/plain'), ('Content-Length', '11'),
                                     ('Set-Cookie', 'a=1'), ('Set-Cookie', 'b=2')])
        self.assertEqual(r.body, b'hello world')
        self.assertEqual([f[0] for f in r.frames], [b'S', b'D', b'Z'])

    def test_small_response_is_one_write(self):
        # S + D + Z leave in one sendall, so one recv gets them all.
        self.assertEqual(self.edge.buf, b'')
        stream = self.edge.send_request('GET', '/hello')
        time.sleep(0.2)
        data = self.edge.sock.recv(1 << 16)
        head = tw.HDR.unpack_from(data)[2]
        self.assertEqual(len(data), 9 + head + 9 + 11 + 9)
        self.assertEqual(tw.decode_frame(data[-9:]), (b'Z', stream, b''))

    def test_environ(self):
        r = self.edge.request('GET', '/environ/caf\xe9', query='a=1&b=',
                              extra=[('HTTP_X_EMPTY', ''), ('wsgi.url_scheme', 'https')])
        env = json.loads(r.body)
        self.assertEqual(env['path_bytes'], b'/environ/caf\xe9'.hex())
        self.assertEqual(env['QUERY_STRING'], 'a=1&b=')
        self.assertEqual(env['HTTP_X_EMPTY'], '')
        self.assertEqual(env['wsgi.url_scheme'], 'https')
        self.assertEqual(env['wsgi.version'], [1, 0])
        self.assertIs(env['wsgi.multithread'], False)
        self.assertIs(env['wsgi.multiprocess'], True)
        self.assertIs(env['wsgi.run_once'], False)
        self.assertEqual(env['SCRIPT_NAME'], '')

    def test_post_body_read_modes(self):
        sizes = iter([1, 2, 3, 100, 7000, 65536, 5] * 1000).__next__
        for mode in ['read', 'readn1', 'readn1000', 'readn1000000', 'readline',
                     'readline0', 'readline5', 'readline100000', 'readlines',
                     'readlines100', 'readlines1', 'iter', 'partial10', 'partial0']:
            with self.subTest(mode):
                r = self.edge.request('POST', '/echo', query='mode=' + mode, body=BODY,
                                      chunk=sizes)
                self.assertEqual(r.status, 200)
                pieces = expected_pieces(mode)
                if mode == 'readline0':
                    pieces = [b'']      # readline(0) is b'' at once: the app stops
                got = json.loads(r.body)
                self.assertEqual(got['lens'], [len(p) for p in pieces])
                self.assertEqual(got['sha'], hashlib.sha256(b''.join(pieces)).hexdigest())

    def test_empty_body(self):
        r = self.edge.request('POST', '/echo', query='mode=read', body=b'')
        self.assertEqual(json.loads(r.body)['lens'], [0])

    def test_head(self):
        r = self.edge.request('HEAD', '/hello')
        self.assertEqual(r.status, 200)
        self.assertIn(('Content-Length', '11'), r.headers)
        self.assertEqual([f[0] for f in r.frames], [b'S', b'Z'])

    def test_generator_close_and_empty_chunks(self):
        before = int(self.edge.request('GET', '/closed').body)
        r = self.edge.request('GET', '/gen')
        self.assertEqual(r.body, b'one two three')
        self.assertEqual([f[0] for f in r.frames], [b'S', b'D', b'D', b'D', b'Z'])
        self.assertEqual(int(self.edge.request('GET', '/closed').body), before + 1)

    def test_big_chunk_is_split(self):
        r = self.edge.request('GET', '/big', query='n=200000')
        self.assertEqual(r.body, b'\xab' * 200000)
        self.assertEqual([len(p) for t, p in r.frames if t == b'D'],
                         [65536, 65536, 65536, 200000 - 3 * 65536])

    def test_write_callable(self):
        r = self.edge.request('GET', '/write')
        self.assertEqual(r.body, b'written returned')

    def test_raise_before_headers(self):
        r = self.edge.request('GET', '/raise-before')
        self.assertEqual(r.status, 500)
        self.assertEqual(r.body, b'Internal Server Error')
        self.assertEqual([f[0] for f in r.frames], [b'S', b'D', b'Z'])
        self.assertIn('RuntimeError: boom before headers', self.w.err())

    def test_raise_after_headers(self):
        r = self.edge.request('GET', '/raise-after')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b'partial')
        self.assertEqual(r.error, 'RuntimeError: boom after headers')
        self.assertIn('boom after headers', self.w.err())
        self.assertEqual(self.edge.request('GET', '/hello').status, 200)

    def test_exc_info(self):
        r = self.edge.request('GET', '/excinfo-before')
        self.assertEqual((r.status, r.body, r.error), (503, b'replaced', None))
        r = self.edge.request('GET', '/excinfo-after')
        self.assertEqual((r.status, r.body, r.error), (200, b'sent', 'ValueError: too late'))

    def test_start_response_misuse(self):
        for path, why in (('/twice', 'called twice'),
                          ('/bad-status', 'invalid WSGI status'),
                          ('/bad-header', 'invalid header'),
                          ('/bad-header-name', "invalid header name 'Bad Name'"),
                          ('/bad-header-nul', 'invalid header'),
                          ('/bad-length', "invalid Content-Length '1_0'"),
                          ('/conflicting-length',
                           'conflicting Content-Length headers: 3 and 4')):
            r = self.edge.request('GET', path)
            self.assertEqual(r.status, 500, path)
            self.assertIn(why, self.w.err(), path)

    def test_content_length_is_sent_as_digits(self):
        r = self.edge.request('GET', '/spaced-length')
        self.assertEqual((r.status, r.body, r.error), (200, b'12345', None))
        self.assertIn(('Content-Length', '5'), r.headers)

    def test_content_length_mismatch(self):
        for path in ('/short', '/short-list', '/short-list2'):
            r = self.edge.request('GET', path)
            self.assertEqual(r.body, b'12345', path)
            self.assertIn('shorter than Content-Length', r.error or '', path)
        r = self.edge.request('GET', '/long')
        self.assertEqual((r.body, r.error), (b'12345', None))

    def test_file_wrapper_sends_fd(self):
        data = bytes(range(256)) * 64
        r = self.edge.request('GET', '/file')
        self.assertEqual([f[0] for f in r.frames], [b'S', b'F', b'Z'])
        self.assertEqual(r.files, [(0, tw.TO_EOF)])
        self.assertEqual(r.body, data)
        r = self.edge.request('GET', '/file', query='offset=1000')
        self.assertEqual((r.files, r.body), ([(1000, tw.TO_EOF)], data[1000:]))
        r = self.edge.request('GET', '/file', query='offset=1000&cl=300')
        self.assertEqual((r.files, r.body), ([(1000, 300)], data[1000:1300]))
        r = self.edge.request('HEAD', '/file')
        self.assertEqual([f[0] for f in r.frames], [b'S', b'Z'])
        self.assertEqual(len(self.edge.fds), 0)

    def test_file_wrapper_filelike_iterates(self):
        r = self.edge.request('GET', '/filelike')
        self.assertEqual(r.body, bytes(range(256)) * 64)
        self.assertEqual([len(p) for t, p in r.frames if t == b'D'], [5000, 5000, 5000, 1384])

    def test_abort_mid_stream(self):
        before = int(self.edge.request('GET', '/closed').body)
        stream = self.edge.send_request('GET', '/slow')
        self.assertEqual(self.edge.read_frame()[0], b'S')
        self.assertEqual(self.edge.read_frame()[0], b'D')
        t0 = time.monotonic()
        self.edge.send(b'A', stream)
        while True:
            ftype, s, _ = self.edge.read_frame()
            self.assertEqual(s, stream)
            if ftype == b'Z':
                break
            self.assertEqual(ftype, b'D')
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(int(self.edge.request('GET', '/closed').body), before + 1)

    def test_late_abort_is_ignored(self):
        stream = self.edge.send_request('GET', '/hello')
        self.edge.read_reply(stream)
        self.edge.send(b'A', stream)
        self.assertEqual(self.edge.request('GET', '/hello').body, b'hello world')

    def test_abort_while_body_unread(self):
        # A arrives while the app has not read the body: treated as body end.
        stream = self.edge.next_stream
        self.edge.next_stream += 1
        env = tw.encode_vars([('REQUEST_METHOD', 'POST'), ('PATH_INFO', '/slow'),
                              ('SERVER_NAME', 'x'), ('SERVER_PORT', '1'),
                              ('CONTENT_LENGTH', '10')])
        self.edge.sock.sendall(tw.frame(b'H', stream, env) + tw.frame(b'B', stream, b'12345'))
        self.assertEqual(self.edge.read_frame()[0], b'S')
        self.edge.send(b'A', stream)
        while self.edge.read_frame()[0] != b'Z':
            pass
        self.assertEqual(self.edge.request('GET', '/hello').body, b'hello world')

    def test_pid(self):
        self.assertEqual(int(self.edge.request('GET', '/pid').body), self.pid)

    def test_pipelined_behind_current(self):
        # A request queued while one is served is served next, in order,
        # with its body.
        a = self.edge.send_request('GET', '/sleep', query='t=0.2')
        b = self.edge.pipeline('POST', '/echo', body=b'piped body')
        ra, rb = self.edge.read_reply(a), self.edge.read_reply(b)
        self.assertEqual((ra.status, ra.body, rb.status), (200, b'slept', 200))
        self.assertEqual(json.loads(rb.body)['sha'], hashlib.sha256(b'piped body').hexdigest())

    def test_pipelined_taken_back_is_never_served(self):
        # tandem takes a queued request back (its patience ran out): the
        # worker never serves it, and the next request, whose number skips
        # the taken one, is served from the queue all the same.
        a = self.edge.send_request('GET', '/sleep', query='t=0.2')
        b = self.edge.pipeline('GET', '/hello')
        self.assertEqual(self.edge.take_back(), b)
        self.assertEqual(self.edge.read_reply(a).status, 200)
        c = self.edge.pipeline('GET', '/hello')
        rc = self.edge.read_reply(c)
        self.assertEqual((rc.status, rc.body), (200, b'hello world'))
        self.assertIsNone(self.edge.take_back())

    def test_pipelined_after_sock_request(self):
        # A request on sock and one queued behind it while the worker is
        # idle: the worker serves them in order even when it finds the
        # queue first (the queued number is not the next one it expects).
        for _ in range(20):
            a = self.edge.send_request('GET', '/hello')
            b = self.edge.pipeline('GET', '/pid')
            self.assertEqual(self.edge.read_reply(a).body, b'hello world')
            self.assertEqual(int(self.edge.read_reply(b).body), self.pid)

    def test_idle_worker_sleeps_once_per_request(self):
        # A task asleep in recv() on a unix socket is woken whenever the peer
        # reads what it sent. The worker waits in poll(POLLIN) instead, so
        # tandem reading a response does not wake it up: one voluntary
        # context switch per request (waiting for it), not two.
        def switches():
            with open('/proc/%d/status' % self.pid) as f:
                for line in f:
                    if line.startswith('voluntary_ctxt_switches:'):
                        return int(line.split()[1])
        self.edge.request('GET', '/hello')
        n, before = 50, switches()
        for _ in range(n):
            stream = self.edge.send_request('GET', '/hello')
            time.sleep(0.002)        # the worker answers and waits again
            self.edge.read_reply(stream)
            time.sleep(0.002)        # ... and must still be asleep
        self.assertLess((switches() - before) / n, 1.5)


class LifecycleTest(unittest.TestCase):
    def test_sigterm_idle_exits_0(self):
        w = Proc('basic:app')
        try:
            w.ready()
            w.p.send_signal(signal.SIGTERM)
            self.assertEqual(w.wait(), 0)
        finally:
            w.close()

    def test_sigterm_busy_finishes_request(self):
        w = Proc('basic:app')
        try:
            w.ready()
            stream = w.edge.send_request('GET', '/sleep', query='t=0.5')
            time.sleep(0.2)
            w.p.send_signal(signal.SIGTERM)
            w.p.send_signal(signal.SIGINT)       # ignored by workers
            r = w.edge.read_reply(stream)
            self.assertEqual(r.body, b'slept')
            self.assertEqual(w.wait(), 0)
        finally:
            w.close()

    def test_eof_exits_0(self):
        w = Proc('basic:app')
        w.ready()
        w.edge.sock.close()
        self.assertEqual(w.wait(), 0)
        w.close()

    def test_sigusr2_dumps_traceback(self):
        w = Proc('basic:app')
        try:
            w.ready()
            stream = w.edge.send_request('GET', '/sleep', query='t=0.6')
            time.sleep(0.3)
            w.p.send_signal(signal.SIGUSR2)
            self.assertEqual(w.edge.read_reply(stream).body, b'slept')
            self.assertIn('basic.py', w.err())
            self.assertIn('in app', w.err())
        finally:
            w.close()

    def test_import_error_exit_3(self):
        w = Proc('broken:app')
        self.assertEqual(w.wait(), 3)
        err = w.err()
        self.assertIn('Traceback', err)
        self.assertIn('this_module_does_not_exist_tandem', err)
        w.close()

    def test_missing_attribute_exit_3(self):
        w = Proc('basic:nope')
        self.assertEqual(w.wait(), 3)
        self.assertIn("has no attribute 'nope'", w.err())
        w.close()

    def test_app_specs(self):
        for spec, body in [('factory:create_app()', b'hi'),
                           ("factory:create_app('yo')", b'yo'),
                           ('factory:Holder.inner.app', b'dotted')]:
            w = Proc(spec)
            try:
                w.ready()
                self.assertEqual(w.edge.request('GET', '/').body, body, spec)
            finally:
                w.close()

    def test_protocol_error_exit_4(self):
        w = Proc('basic:app')
        w.ready()
        w.edge.send(b'Q', 0)
        self.assertEqual(w.wait(), 4)
        w.close()

    def test_bad_pipelined_message_exit_4(self):
        # A queued message that is not one whole request (H, B..., E) is
        # a protocol error: the worker says which and exits 4.
        for msg, why in [(tw.frame(b'H', 1, b''), 'without E'),
                         (tw.frame(b'E', 1), 'starts with'),
                         (tw.frame(b'H', 1, b'') + tw.frame(b'E', 1)[:5], 'truncated')]:
            w = Proc('basic:app')
            try:
                w.ready()
                w.edge.queue[0].send(msg)
                self.assertEqual(w.wait(), 4, why)
                self.assertIn(why, w.err())
            finally:
                w.close()


class ValidatorTest(unittest.TestCase):
    """wsgiref.validate around the test app, warnings as errors (-W error):
    any PEP 3333 violation by the worker becomes a 500 or a traceback."""

    def test_validator(self):
        w = Proc('validated:app', pyflags=('-W', 'error'))
        try:
            w.ready()
            e = w.edge
            cases = [('GET', '/hello', '', None, b'hello world'),
                     ('HEAD', '/hello', '', None, b''),
                     ('GET', '/gen', '', None, b'one two three'),
                     ('GET', '/write', '', None, b'written returned'),
                     ('GET', '/file', 'offset=16000', None, (bytes(range(256)) * 64)[16000:]),
                     ('GET', '/filelike', '', None, bytes(range(256)) * 64),
                     ('GET', '/big', 'n=100000', None, b'\xab' * 100000)]
            for mode in ('readn1000', 'readline', 'readline5', 'readlines', 'readlines100',
                         'iter', 'partial3'):
                pieces = expected_pieces(mode)
                cases.append(('POST', '/echo', 'mode=' + mode, BODY, json.dumps(
                    {'lens': [len(p) for p in pieces],
                     'sha': hashlib.sha256(b''.join(pieces)).hexdigest()}).encode()))
            for method, path, query, body, want in cases:
                with self.subTest(method + ' ' + path + ' ' + query):
                    r = e.request(method, path, query=query, body=body, chunk=999)
                    self.assertEqual((r.status, r.error), (200, None), w.err())
                    self.assertEqual(r.body, want)
            self.assertEqual(int(e.request('GET', '/closed').body), 1)
            e.sock.close()
            self.assertEqual(w.wait(), 0)
            self.assertNotIn('Error', w.err())
            self.assertNotIn('Warning', w.err())
        finally:
            w.close()


# ---------------------------------------------------------------- zygote mode

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), 'prctl(PR_SET_CHILD_SUBREAPER)')


def ppid_of(pid):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('PPid:'):
                return int(line.split()[1])


def socket_inodes(pid):
    out = set()
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            link = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        if link.startswith('socket:['):
            out.add(int(link[8:-1]))
    return out


class ZygoteTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        become_subreaper()

    def fork_worker(self, z, wid):
        ours, theirs = socket.socketpair()
        inode = os.fstat(theirs.fileno()).st_ino
        socket.send_fds(z.edge.sock, [tw.frame(b'f', wid)], [theirs.fileno()])
        theirs.close()
        edge = Edge(ours)
        t, s, payload = edge.read_frame()
        self.assertEqual((t, s), (b'R', 0))
        return edge, int(payload), inode

    def reap(self, pid):
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)

    def test_zygote_forks_workers(self):
        z = Proc('basic:app', mode='zygote')
        try:
            zpid = z.ready(b'r')
            self.assertEqual(zpid, z.p.pid)
            e1, pid1, inode1 = self.fork_worker(z, 1)
            # Re-parented to us (the subreaper), not the zygote.
            self.assertEqual(ppid_of(pid1), os.getpid())
            self.assertNotEqual(pid1, zpid)
            r = e1.request('GET', '/hello')
            self.assertEqual(r.body, b'hello world')
            self.assertEqual(int(e1.request('GET', '/pid').body), pid1)
            r = e1.request('POST', '/echo', query='mode=readline', body=BODY, chunk=777)
            self.assertEqual(json.loads(r.body)['lens'],
                             [len(p) for p in expected_pieces('readline')])
            e2, pid2, inode2 = self.fork_worker(z, 2)
            # No worker holds the control socket or another worker's socket.
            fds2 = socket_inodes(pid2)
            self.assertIn(inode2, fds2)
            self.assertNotIn(inode1, fds2)
            self.assertNotIn(z.child_inode, fds2)
            self.assertNotIn(z.child_inode, socket_inodes(pid1))
            self.assertEqual(e2.request('GET', '/hello').body, b'hello world')
            os.kill(pid1, signal.SIGTERM)
            self.assertEqual(self.reap(pid1), 0)
            e1.sock.close()
            # Workers outlive the zygote; EOF on the control socket ends it.
            z.edge.sock.close()
            self.assertEqual(z.wait(), 0)
            self.assertEqual(e2.request('GET', '/hello').body, b'hello world')
            e2.sock.close()
            self.assertEqual(self.reap(pid2), 0)
        finally:
            z.close()

    def test_fork_without_fd_is_error(self):
        z = Proc('basic:app', mode='zygote')
        try:
            z.ready(b'r')
            z.edge.send(b'f', 9)
            t, s, payload = z.edge.read_frame()
            self.assertEqual((t, s), (b'e', 9))
            self.assertIn(b'descriptor', payload)
            # Still usable afterwards.
            e, pid, _ = self.fork_worker(z, 10)
            self.assertEqual(e.request('GET', '/hello').status, 200)
            e.sock.close()
            self.assertEqual(self.reap(pid), 0)
            z.p.send_signal(signal.SIGTERM)
            self.assertEqual(z.wait(), 0)
        finally:
            z.close()

    def test_zygote_import_error(self):
        z = Proc('broken:app', mode='zygote')
        try:
            t, s, payload = z.edge.read_frame()
            self.assertEqual((t, s), (b'i', 0))
            self.assertIn(b'Traceback', payload)
            self.assertIn(b'this_module_does_not_exist_tandem', payload)
            self.assertEqual(z.wait(), 3)
            self.assertIn('this_module_does_not_exist_tandem', z.err())
        finally:
            z.close()


# ---------------------------------------------------------------- real frameworks

class FrameworkTest(unittest.TestCase):
    @unittest.skipUnless(have('flask'), 'python3-flask not installed')
    def test_flask(self):
        w = Proc('flask_app:app')
        try:
            w.ready()
            r = w.edge.request('GET', '/')
            self.assertEqual((r.status, r.body), (200, b'hello from flask'))
            body = b'name=tandem'
            stream = w.edge.send_request('POST', '/form', body=body, extra=[
                ('CONTENT_TYPE', 'application/x-www-form-urlencoded')])
            self.assertEqual(w.edge.read_reply(stream).body, b'name=tandem')
            r = w.edge.request('GET', '/file')
            self.assertEqual(r.body, b'flask file ' * 1000)
            self.assertIn(b'F', [f[0] for f in r.frames])
        finally:
            w.close()

    @unittest.skipUnless(have('django'), 'python3-django not installed')
    def test_django(self):
        w = Proc('django_app:application')
        try:
            w.ready()
            r = w.edge.request('GET', '/', query='x=1')
            self.assertEqual((r.status, r.body), (200, b'hello from django 1'))
            r = w.edge.request('POST', '/upload', body=b'z' * 100000, chunk=4096)
            self.assertEqual(r.body, b'got 100000 bytes')
            r = w.edge.request('GET', '/file')
            self.assertEqual(r.body, b'django file ' * 1000)
            self.assertIn(b'F', [f[0] for f in r.frames])
        finally:
            w.close()



class SchedTest(unittest.TestCase):
    """--sched batch: the worker runs under SCHED_BATCH; anything else is a
    usage error, before the app is imported."""

    def test_batch(self):
        if not hasattr(os, 'SCHED_BATCH'):
            self.skipTest('no SCHED_BATCH here')
        out = subprocess.run(
            [sys.executable, '-c',
             'import os, sys; sys.argv = ["w"]; import tandem_worker as tw; '
             'tw._sched_batch(); print(os.sched_getscheduler(0) == os.SCHED_BATCH)'],
            cwd=HERE, capture_output=True, text=True, timeout=30)
        self.assertEqual(out.stdout.strip(), 'True', out.stderr)

    def test_bad_value_is_a_usage_error(self):
        err = io.StringIO()
        old, sys.stderr = sys.stderr, err
        try:
            code = tw.main(['worker', '--app', 'app:application', '--sched', 'idle'])
        finally:
            sys.stderr = old
        self.assertEqual(code, 2)
        self.assertIn('--sched batch', err.getvalue())


if __name__ == '__main__':
    unittest.main()
