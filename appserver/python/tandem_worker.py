"""tandem's embedded Python WSGI worker (standard library only).

tandem writes this file into its private runtime directory and runs

    /usr/bin/python3 -u tandem_worker.py MODE --app MODULE:CALLABLE [--chdir DIR]

MODE ``worker``: fd 3 is this worker's socket to tandem; import the app, send
``R`` and serve requests one at a time. MODE ``zygote``: fd 3 is the control
socket; import the app once, then fork a worker for every ``f`` frame.
The wire format is specified in docs/protocol.md.

Exit codes: 0 normal (SIGTERM or tandem closed the socket), 2 bad usage,
3 the app failed to import, 4 protocol violation by the peer.
"""

import atexit
import faulthandler
import gc
import os
import signal
import socket
import stat
import struct
import sys
import time
import traceback
from collections import deque

# ---------------------------------------------------------------- codec

HDR = struct.Struct('<cII')          # type, stream, payload length
HDR_SIZE = HDR.size                  # 9
MAX_FRAME = 16 * 1024 * 1024
MAX_CHUNK = 65536                    # largest B/D payload
TO_EOF = 0xFFFFFFFFFFFFFFFF          # F count: to the end of the file
_U16 = struct.Struct('<H')
_FILE = struct.Struct('<QQ')


class ProtocolError(BaseException):
    # BaseException: an app's `except Exception` must not swallow it; the
    # worker exits (code 4) instead of guessing where the stream resumes.
    pass


def frame(ftype, stream, payload=b''):
    """One frame as bytes; ftype is a one-byte bytes object like b'D'."""
    return HDR.pack(ftype, stream, len(payload)) + payload


def decode_frame(data):
    """Split exactly one whole frame into (type, stream, payload)."""
    ftype, stream, length = HDR.unpack_from(data)
    if len(data) != HDR_SIZE + length:
        raise ProtocolError('frame length mismatch')
    return ftype, stream, bytes(data[HDR_SIZE:])


def encode_vars(pairs):
    """uwsgi vars block; str keys/values are encoded latin-1 (PEP 3333)."""
    out = []
    for k, v in pairs:
        if type(k) is str:
            k = k.encode('latin-1')
        if type(v) is str:
            v = v.encode('latin-1')
        if len(k) > 0xFFFF or len(v) > 0xFFFF:
            raise ValueError('uwsgi var longer than 65535 bytes')
        out += (_U16.pack(len(k)), k, _U16.pack(len(v)), v)
    return b''.join(out)


def decode_vars(payload, start=0):
    """uwsgi vars block -> list of (str, str), decoded latin-1."""
    pairs = []
    end = len(payload)
    unpack = _U16.unpack_from
    i = start
    while i < end:
        if i + 2 > end:
            raise ProtocolError('truncated uwsgi vars')
        (n,) = unpack(payload, i)
        k = str(payload[i + 2:i + 2 + n], 'latin-1')
        i += 2 + n
        if i + 2 > end:
            raise ProtocolError('truncated uwsgi vars')
        (n,) = unpack(payload, i)
        if i + 2 + n > end:
            raise ProtocolError('truncated uwsgi vars')
        pairs.append((k, str(payload[i + 2:i + 2 + n], 'latin-1')))
        i += 2 + n
    return pairs


def encode_head(status, headers):
    """S payload: u16 status + uwsgi vars of the headers."""
    return _U16.pack(status) + encode_vars(headers)


def decode_head(payload):
    """S payload -> (status int, [(name, value), ...])."""
    if len(payload) < 2:
        raise ProtocolError('short S payload')
    return _U16.unpack_from(payload)[0], decode_vars(payload, 2)


def encode_file(offset, count):
    return _FILE.pack(offset, count)


def decode_file(payload):
    return _FILE.unpack(payload)


# ---------------------------------------------------------------- connection

class Conn:
    """Buffered frame reader on the worker socket (recv_into a reusable buffer)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray(256 * 1024)
        self.view = memoryview(self.buf)
        self.start = self.end = 0
        self.need = HDR_SIZE         # bytes the frame at self.start needs
        self.pushed = None           # one frame given back by a poller
        self.eof = False

    def _parse(self):
        avail = self.end - self.start
        if avail < HDR_SIZE:
            return None
        ftype, stream, length = HDR.unpack_from(self.buf, self.start)
        if length > MAX_FRAME:
            raise ProtocolError('frame of %d bytes exceeds 16 MiB' % length)
        if avail < HDR_SIZE + length:
            self.need = HDR_SIZE + length
            return None
        s = self.start + HDR_SIZE
        payload = bytes(self.view[s:s + length])
        self.start = s + length
        if self.start == self.end:
            self.start = self.end = 0
        self.need = HDR_SIZE
        return ftype, stream, payload

    def _recv(self, flags=0):
        if self.start + self.need > len(self.buf):
            # Move the partial frame to the front, growing for big frames.
            n = self.end - self.start
            if self.need > len(self.buf):
                new = bytearray(self.need)
                new[:n] = self.view[self.start:self.end]
                self.view.release()
                self.buf, self.view = new, memoryview(new)
            else:
                self.buf[:n] = self.buf[self.start:self.end]
            self.start, self.end = 0, n
        got = self.sock.recv_into(self.view[self.end:], 0, flags)
        if not got:
            self.eof = True
            raise EOFError
        self.end += got

    def read_frame(self):
        if self.pushed:
            f, self.pushed = self.pushed, None
            return f
        while True:
            f = self._parse()
            if f:
                return f
            if self.eof:
                raise EOFError
            self._recv()

    def poll_frame(self):
        """A frame if one can be had without blocking, else None."""
        if self.pushed:
            f, self.pushed = self.pushed, None
            return f
        f = self._parse()
        if f is None and not self.eof:
            try:
                self._recv(socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return None
            f = self._parse()
        return f

    def send(self, data):
        self.sock.sendall(data)


# ---------------------------------------------------------------- wsgi.input

class Input:
    """wsgi.input: streams the request's B frames; b'' once E (or A) is seen."""

    def __init__(self, conn, stream):
        self._conn = conn
        self._stream = stream
        self._buf = bytearray()
        self._ahead = None           # deque of chunks read ahead by poll_abort
        self._ahead_bytes = 0
        self.done = False            # E (or A) consumed
        self.aborted = False

    def _take(self, f):
        """Apply one frame; returns a body chunk, b'' or None (ignored)."""
        ftype, stream, payload = f
        if ftype not in b'BEA':
            raise ProtocolError('unexpected %r frame during a request' % ftype)
        if stream != self._stream:
            return None              # leftovers of an earlier request
        if ftype == b'B':
            return None if self.done else payload
        if ftype == b'A':
            self.aborted = True
        self.done = True
        return b''

    def _chunk(self):
        if self._ahead:
            c = self._ahead.popleft()
            self._ahead_bytes -= len(c)
            return c
        while not self.done:
            c = self._take(self._conn.read_frame())
            if c is not None:
                return c
        return b''

    def read(self, size=-1):
        # Like a file: short only at the end of the body.
        buf = self._buf
        if size is None:
            size = -1
        while size < 0 or len(buf) < size:
            c = self._chunk()
            if not c:
                break
            buf += c
        n = len(buf) if size < 0 else size
        data = bytes(buf[:n])
        del buf[:n]
        return data

    def readline(self, size=-1):
        if size is None:
            size = -1
        buf = self._buf
        scanned = 0
        while True:
            i = buf.find(b'\n', scanned)
            if i >= 0:
                n = i + 1
                break
            if 0 <= size <= len(buf):
                n = size
                break
            scanned = len(buf)
            c = self._chunk()
            if not c:
                n = len(buf)
                break
            buf += c
        if 0 <= size < n:
            n = size
        data = bytes(buf[:n])
        del buf[:n]
        return data

    def readlines(self, hint=-1):
        lines, total = [], 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self):
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def poll_abort(self):
        """Non-blocking check for an A frame. Body chunks met on the way are
        kept for the app (up to 1 MiB; past that, stop looking ahead)."""
        while not self.aborted and self._ahead_bytes < (1 << 20):
            try:
                f = self._conn.poll_frame()
            except EOFError:         # tandem is gone: as good as an abort
                self.aborted = self.done = True
                break
            if f is None:
                break
            if f[0] not in b'BEA':
                self._conn.pushed = f    # not ours; let the idle loop judge it
                break
            c = self._take(f)
            if c:
                if self._ahead is None:
                    self._ahead = deque()
                self._ahead.append(c)
                self._ahead_bytes += len(c)
        return self.aborted

    def drain(self):
        while not self.done:
            self._take(self._conn.read_frame())
        self._ahead = None


# ---------------------------------------------------------------- file_wrapper

class FileWrapper:
    """wsgi.file_wrapper. Returned for a regular file, it becomes an F frame
    (tandem sendfile()s it); otherwise it is iterated in blksize blocks."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, 'close'):
            self.close = filelike.close

    def __iter__(self):
        read, size = self.filelike.read, self.blksize
        while True:
            data = read(size)
            if not data:
                return
            yield data


# ---------------------------------------------------------------- response

_NO_BODY_STATUS = frozenset((204, 304))
_ERROR_BODY = b'Internal Server Error'
_ERROR_HEAD = encode_head(500, [('Content-Type', 'text/plain'),
                                ('Content-Length', str(len(_ERROR_BODY)))])
_FLUSH_AT = 1 << 20


class Response:
    """start_response/write and the frames of one response."""

    def __init__(self, conn, stream, inp, head_only):
        self.conn = conn
        self.stream = stream
        self.inp = inp
        self.head_only = head_only   # HEAD: send S and Z, no D/F
        self.status = None
        self.head = None             # encoded S frame
        self.head_queued = False     # S placed in self.parts (or sent)
        self.head_sent = False       # S actually written to the socket
        self.remaining = None        # Content-Length bytes still expected
        self.parts = []              # frames not yet written
        self.pending = 0
        self.ended = False           # Z or X written

    def start_response(self, status, headers, exc_info=None):
        if exc_info:
            try:
                if self.head_queued:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.head is not None:
            raise AssertionError('start_response() called twice without exc_info')
        if type(status) is not str:
            raise TypeError('status must be a str, not %s' % type(status).__name__)
        if not (len(status) >= 3 and status[:3].isdigit()
                and (len(status) == 3 or status[3] == ' ') and status[0] != '0'):
            raise ValueError('invalid WSGI status %r' % status)
        code = int(status[:3])
        remaining = None
        for name, value in headers:
            if type(name) is not str or type(value) is not str:
                raise TypeError('header names and values must be str: %r'
                                % ((name, value),))
            if ('\n' in value or '\r' in value or ':' in name or '\n' in name
                    or '\r' in name):
                raise ValueError('invalid header %r' % ((name, value),))
            if len(name) == 14 and name.lower() == 'content-length':
                try:
                    remaining = int(value)
                except ValueError:
                    pass
        payload = encode_head(code, headers)
        self.status = code
        self.head = HDR.pack(b'S', self.stream, len(payload)) + payload
        # Enforce Content-Length only where a body is allowed.
        if self.head_only or code < 200 or code in _NO_BODY_STATUS:
            remaining = None
        self.remaining = remaining
        return self.write

    def _queue_head(self):
        if self.head is None:
            raise AssertionError('the app sent body data before start_response()')
        self.parts.append(self.head)
        self.head_queued = True

    def _flush(self):
        if self.parts:
            self.conn.send(b''.join(self.parts))
            self.parts.clear()
            self.pending = 0
            self.head_sent = self.head_queued

    def chunk(self, data, last=False, coalesce=False):
        """Queue one body chunk; write unless coalescing (list bodies)."""
        if type(data) is not bytes and not isinstance(data, (bytes, bytearray)):
            raise TypeError('WSGI body chunks must be bytes, not %s'
                            % type(data).__name__)
        if self.ended or not (data or last):
            return                   # empty, or past Content-Length: dropped
        if not self.head_queued:
            self._queue_head()
        n = len(data)
        if self.remaining is not None:
            if n >= self.remaining:
                if n > self.remaining:
                    data, n = data[:self.remaining], self.remaining
                last = True
            self.remaining -= n
        if n and not self.head_only:
            parts, stream = self.parts, self.stream
            if n <= MAX_CHUNK:
                parts += (HDR.pack(b'D', stream, n), data)
                self.pending += n
            else:
                mv = memoryview(data)
                for i in range(0, n, MAX_CHUNK):
                    piece = mv[i:i + MAX_CHUNK]
                    parts += (HDR.pack(b'D', stream, len(piece)), piece)
                    self.pending += len(piece)
                    if self.pending >= _FLUSH_AT:
                        self._flush()
        if last:
            self.parts.append(HDR.pack(b'Z', self.stream, 0))
            self.ended = True
        if not coalesce or last or self.pending >= _FLUSH_AT:
            self._flush()

    def write(self, data):
        """The PEP 3333 write() callable: sends at once (headers too)."""
        if not self.head_queued:
            self._queue_head()
        if data:
            self.chunk(data)
        else:
            self._flush()

    def send_file(self, wrapper):
        """Send a FileWrapper over a regular file as one F frame; False if it
        has to be iterated instead."""
        f = wrapper.filelike
        try:
            fd = f.fileno()
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return False
            offset = f.tell() if hasattr(f, 'tell') else os.lseek(fd, 0, os.SEEK_CUR)
        except (AttributeError, OSError, TypeError, ValueError):
            return False
        if self.ended or self.inp.aborted:
            self.finish()
            return True
        if not self.head_queued:
            self._queue_head()
        count = TO_EOF if self.remaining is None else self.remaining
        if self.head_only or count == 0:
            self.remaining = None
            self.finish()
            return True
        self.remaining = None
        self.parts += (frame(b'F', self.stream, _FILE.pack(offset, count)),
                       HDR.pack(b'Z', self.stream, 0))
        data = b''.join(self.parts)
        self.parts.clear()
        # The descriptor travels with this very sendmsg (SCM_RIGHTS).
        sent = socket.send_fds(self.conn.sock, [data], [fd])
        if sent < len(data):
            self.conn.send(data[sent:])
        self.head_sent = self.ended = True
        return True

    def finish(self):
        if self.ended:
            return
        if self.inp.aborted:
            self.parts.clear()
            self.conn.send(HDR.pack(b'Z', self.stream, 0))
            self.ended = True
            return
        if not self.head_queued:
            self._queue_head()
        if self.remaining:
            # Body shorter than Content-Length: X makes tandem cut the client.
            msg = b'response body shorter than Content-Length'
            self.parts.append(frame(b'X', self.stream, msg))
        else:
            self.parts.append(HDR.pack(b'Z', self.stream, 0))
        self.ended = True
        self._flush()

    def fail(self, environ):
        """The app raised: log, then end the response as well as we still can."""
        sys.stderr.write('tandem worker %d: error serving %s %s\n%s' % (
            os.getpid(), environ.get('REQUEST_METHOD'),
            environ.get('REQUEST_URI') or environ.get('PATH_INFO'),
            traceback.format_exc()))
        if self.ended:
            return
        self.ended = True
        s = self.stream
        if self.inp.aborted:
            self.conn.send(HDR.pack(b'Z', s, 0))
        elif not self.head_sent:
            self.parts.clear()       # an S still queued is replaced by the 500
            body = b'' if self.head_only else frame(b'D', s, _ERROR_BODY)
            self.conn.send(b''.join((frame(b'S', s, _ERROR_HEAD), body,
                                     HDR.pack(b'Z', s, 0))))
        else:
            self.parts.clear()
            e = sys.exc_info()[1]
            msg = ('%s: %s' % (type(e).__name__, e))[:4096]
            self.conn.send(frame(b'X', s, msg.encode('utf-8', 'replace')))


# ---------------------------------------------------------------- worker loop

class _State:
    idle = False
    stopping = False


def _on_sigterm(signum, frame_):
    _State.stopping = True
    if _State.idle:
        raise SystemExit(0)


def handle(conn, app, base, stream, payload):
    environ = base.copy()
    environ.update(decode_vars(payload))
    inp = environ['wsgi.input'] = Input(conn, stream)
    resp = Response(conn, stream, inp, environ.get('REQUEST_METHOD') == 'HEAD')
    result = None
    try:
        result = app(environ, resp.start_response)
        if type(result) is FileWrapper and resp.send_file(result):
            pass
        elif type(result) is list or type(result) is tuple:
            # Whole body known: coalesce S, D... and Z into as few writes as
            # possible (one, for a small response).
            last = len(result) - 1
            for i, data in enumerate(result):
                resp.chunk(data, i == last, True)
        else:
            first = True
            for data in result:
                # Between chunks (not before the first) look for an abort.
                if inp.poll_abort() if not first else inp.aborted:
                    break
                first = False
                resp.chunk(data)
        resp.finish()
    except Exception:
        resp.fail(environ)
    finally:
        close = getattr(result, 'close', None)
        if close is not None:
            try:
                close()
            except Exception:
                resp.fail(environ)
    inp.drain()


def serve(sock, app):
    """Serve requests on sock until SIGTERM or EOF; returns the exit code."""
    conn = Conn(sock)
    base = {
        'wsgi.version': (1, 0), 'wsgi.url_scheme': 'http',
        'wsgi.errors': sys.stderr, 'wsgi.multithread': False,
        'wsgi.multiprocess': True, 'wsgi.run_once': False,
        'wsgi.file_wrapper': FileWrapper,
        # wsgi.input returns b'' at the end of the body (werkzeug reads
        # bodies without Content-Length only when this is set).
        'wsgi.input_terminated': True,
        'SCRIPT_NAME': '', 'QUERY_STRING': '',
    }
    try:
        conn.send(frame(b'R', 0, b'%d' % os.getpid()))
        while True:
            _State.idle = True
            if _State.stopping:
                return 0
            try:
                ftype, stream, payload = conn.read_frame()
            except EOFError:
                return 0
            if ftype != b'H':
                if ftype in b'BEA':
                    continue         # late frames of a finished/aborted request
                raise ProtocolError('unexpected %r frame while idle' % ftype)
            _State.idle = False
            handle(conn, app, base, stream, payload)
    except ProtocolError as e:
        sys.stderr.write('tandem worker %d: protocol error: %s\n' % (os.getpid(), e))
        return 4
    except (BrokenPipeError, ConnectionResetError, EOFError):
        return 0                     # tandem went away mid-response


def _worker_signals():
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # tandem handles Ctrl-C
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    faulthandler.register(signal.SIGUSR2, all_threads=True)


# ---------------------------------------------------------------- app loading

def load_app(spec):
    """'module:attr', 'module:a.b', 'module:create_app()' or with literal
    arguments 'module:create_app("prod")'. Default attr: application."""
    import ast
    import importlib
    module_name, _, expr = spec.partition(':')
    module = importlib.import_module(module_name)
    node = ast.parse(expr or 'application', mode='eval').body
    call = None
    if isinstance(node, ast.Call):
        call, node = node, node.func
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        raise ImportError('invalid app spec %r' % spec)
    names.append(node.id)
    obj = module
    for name in reversed(names):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            raise ImportError('%r has no attribute %r (app spec %r)'
                              % (obj, name, spec)) from None
    if call is not None:
        args = [ast.literal_eval(a) for a in call.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        obj = obj(*args, **kwargs)
    if not callable(obj):
        raise TypeError('app %r is not callable: %r' % (spec, obj))
    return obj


def _import_or_report(spec, report=None):
    try:
        return load_app(spec)
    except BaseException:
        tb = traceback.format_exc()
        sys.stderr.write(tb)
        if report is not None:
            try:
                report(tb)
            except OSError:
                pass
        sys.stderr.flush()
        sys.exit(3)


# ---------------------------------------------------------------- zygote

def zygote(ctrl, spec):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.register(signal.SIGUSR2, all_threads=True)
    app = _import_or_report(spec, lambda tb: ctrl.sendall(
        frame(b'i', 0, tb.encode('utf-8', 'replace'))))
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    # Objects from the import live in a permanent generation, so the
    # collector never touches (and un-shares) their pages in workers.
    gc.collect()
    gc.freeze()
    ctrl.sendall(frame(b'r', 0, b'%d' % os.getpid()))
    buf = bytearray()
    fds = deque()                    # received descriptors not yet used
    while True:
        data, new, flags, _ = socket.recv_fds(ctrl, 65536, 16)
        for fd in new:
            os.set_inheritable(fd, False)
            fds.append(fd)
        if not data:
            return 0                 # tandem closed the control socket
        buf += data
        while len(buf) >= HDR_SIZE:
            ftype, wid, length = HDR.unpack_from(buf)
            if length > MAX_FRAME:
                sys.stderr.write('tandem zygote: frame too long\n')
                return 4
            if len(buf) < HDR_SIZE + length:
                break
            del buf[:HDR_SIZE + length]
            if ftype != b'f':
                continue             # unknown control frames are ignored
            if not fds:
                ctrl.sendall(frame(b'e', wid, b'fork request without a descriptor'
                                   + (b' (control data truncated)'
                                      if flags & socket.MSG_CTRUNC else b'')))
                continue
            _spawn(ctrl, wid, fds.popleft(), fds, app)


def _spawn(ctrl, wid, fd, others, app):
    """Double fork: zygote -> intermediate (exits at once) -> worker, which
    tandem (a child subreaper) inherits."""
    try:
        pid = os.fork()
    except OSError as e:
        os.close(fd)
        ctrl.sendall(frame(b'e', wid, ('fork: %s' % e).encode()))
        return
    if pid:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code:
            msg = 'second fork: %s' % (os.strerror(code) if code > 0 else
                                      'intermediate killed by signal %d' % -code)
            ctrl.sendall(frame(b'e', wid, msg.encode()))
        return
    # Intermediate process.
    try:
        mid = os.getpid()
        if os.fork():
            os._exit(0)
    except OSError as e:
        os._exit(e.errno or 1)
    except BaseException:
        os._exit(1)
    # The worker. Never return into the zygote's frames: always os._exit.
    code = 1
    try:
        ctrl.close()
        for other in others:         # descriptors meant for other workers
            os.close(other)
        deadline = time.monotonic() + 2.0
        while os.getppid() == mid and time.monotonic() < deadline:
            time.sleep(0.001)
        _worker_signals()
        code = serve(socket.socket(fileno=fd), app)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()  # what a normal interpreter exit would do
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


# ---------------------------------------------------------------- main

def main(argv):
    usage = 'usage: tandem_worker.py worker|zygote --app MODULE:CALLABLE [--chdir DIR]\n'
    if not argv or argv[0] not in ('worker', 'zygote'):
        sys.stderr.write(usage)
        return 2
    mode, opts, args = argv[0], {}, argv[1:]
    while args:
        if len(args) < 2 or args[0] not in ('--app', '--chdir'):
            sys.stderr.write(usage)
            return 2
        opts[args[0]] = args[1]
        args = args[2:]
    if '--app' not in opts:
        sys.stderr.write(usage)
        return 2
    if '--chdir' in opts:
        os.chdir(opts['--chdir'])
    sys.path.insert(0, os.getcwd())
    with socket.socket(fileno=3) as sock:
        sock.set_inheritable(False)  # subprocesses of the app must not hold it
        if mode == 'zygote':
            return zygote(sock, opts['--app'])
        app = _import_or_report(opts['--app'])
        _worker_signals()
        return serve(sock, app)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
