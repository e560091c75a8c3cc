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
import re
import select
import signal
import socket
import stat
import struct
import sys
import time
import traceback
from collections import deque

# The file is one script (tandem embeds it with go:embed), in this order:
#   1. codec          frames and uwsgi vars (docs/protocol.md)
#   2. connection     buffered frame reader on the worker socket
#   3. wsgi.input     the request body, streamed from B frames
#   4. file_wrapper   wsgi.file_wrapper (sendfile through an F frame)
#   5. response       start_response/write and the S/D/F/Z/X frames
#   6. request        environ + one app call (handle)
#   7. worker loop    serve(), signals
#   8. app loading, zygote, main
#
# The per-request path (Conn.read_frame, _environ_into, Input.__init__,
# Response.start_response/chunk/finish, handle, serve) is written for the
# interpreter: few calls, few attribute lookups, __slots__, one latin-1
# decode/encode per block instead of one per string. The edge waits on it
# for every request, so each microsecond here is paid per request.

# ---------------------------------------------------------------- 1. codec

HDR = struct.Struct('<cII')          # type, stream, payload length
HDR_SIZE = HDR.size                  # 9
MAX_FRAME = 16 * 1024 * 1024
MAX_PIPELINED = 64 * 1024             # largest pipelined request (one message)
MAX_CHUNK = 65536                    # largest B/D payload
MAX_VAR = 0xFFFF                     # longest uwsgi var key or value
TO_EOF = 0xFFFFFFFFFFFFFFFF          # F count: to the end of the file
_U16 = struct.Struct('<H')
_FILE = struct.Struct('<QQ')
_pack_hdr = HDR.pack
_Z = b'Z'
_D = b'D'


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


# uwsgi vars are handled as latin-1 text: a u16 length becomes two chars
# chr(lo) + chr(hi), and a whole block is one str <-> bytes conversion
# (latin-1 maps bytes 0-255 to code points 0-255 and back, one to one).
_LEN2 = tuple(chr(n & 0xFF) + chr(n >> 8) for n in range(256))


def _len2(n):
    if n > MAX_VAR:
        raise ValueError('uwsgi var longer than 65535 bytes')
    return _LEN2[n] if n < 256 else chr(n & 0xFF) + chr(n >> 8)


def encode_vars(pairs):
    """uwsgi vars block; str keys/values are encoded latin-1 (PEP 3333)."""
    out = []
    for k, v in pairs:
        if type(k) is str:
            k = k.encode('latin-1')
        if type(v) is str:
            v = v.encode('latin-1')
        if len(k) > MAX_VAR or len(v) > MAX_VAR:
            raise ValueError('uwsgi var longer than 65535 bytes')
        out += (_U16.pack(len(k)), k, _U16.pack(len(v)), v)
    return b''.join(out)


def _truncated():
    return ProtocolError('truncated uwsgi vars')


def decode_vars(payload, start=0):
    """uwsgi vars block -> list of (str, str), decoded latin-1."""
    s = str(payload, 'latin-1')
    end = len(s)
    pairs = []
    i = start
    try:
        while i < end:
            # Lengths come from the bytes (indexing gives ints), strings
            # from their latin-1 text. A string that runs past the end
            # makes an index raise, or leaves i > end.
            j = i + 2 + payload[i] + (payload[i + 1] << 8)
            k = s[i + 2:j]
            i = j + 2 + payload[j] + (payload[j + 1] << 8)
            pairs.append((k, s[j + 2:i]))
    except IndexError:
        raise _truncated() from None
    if i != end:
        raise _truncated()
    return pairs


def _environ_into(payload, environ):
    """decode_vars() straight into the environ dict (the per-request path)."""
    s = str(payload, 'latin-1')
    end = len(s)
    i = 0
    try:
        while i < end:
            j = i + 2 + payload[i] + (payload[i + 1] << 8)
            k = s[i + 2:j]
            i = j + 2 + payload[j] + (payload[j + 1] << 8)
            environ[k] = s[j + 2:i]
    except IndexError:
        raise _truncated() from None
    if i != end:
        raise _truncated()


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


# ---------------------------------------------------------------- 2. connection

class Conn:
    """Buffered frame reader on the worker socket (recv_into a reusable buffer)."""

    __slots__ = ('sock', 'buf', 'view', 'start', 'end', 'pushed', 'eof', 'wait')

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray(256 * 1024)
        self.view = memoryview(self.buf)
        self.start = self.end = 0    # unparsed bytes are buf[start:end]
        self.pushed = None           # one frame given back by a poller
        self.eof = False
        # Block in poll(POLLIN), never in recv(). A task asleep in recv() on
        # a unix socket is woken each time the peer reads what it sent (the
        # write-space wake-up shares the socket's wait queue, unfiltered), so
        # a worker waiting for its next request would wake up, find nothing
        # and sleep again once per response: an extra pair of context
        # switches per request. poll() waits only for the events it asked for.
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        self.wait = poller.poll

    def _parse(self):
        """The frame at self.start if it is complete, else the number of
        bytes it needs (an int)."""
        start = self.start
        avail = self.end - start
        if avail < HDR_SIZE:
            return HDR_SIZE
        ftype, stream, length = HDR.unpack_from(self.buf, start)
        if length > MAX_FRAME:
            raise ProtocolError('frame of %d bytes exceeds 16 MiB' % length)
        if avail < HDR_SIZE + length:
            return HDR_SIZE + length
        if avail == HDR_SIZE + length:
            self.start = self.end = 0
        else:
            self.start = start + HDR_SIZE + length
        if length:
            start += HDR_SIZE
            return ftype, stream, bytes(self.view[start:start + length])
        return ftype, stream, b''

    def _recv(self, need, flags=0):
        if self.start + need > len(self.buf):
            # Move the partial frame to the front, growing for big frames.
            n = self.end - self.start
            if need > len(self.buf):
                new = bytearray(need)
                new[:n] = self.view[self.start:self.end]
                self.view.release()
                self.buf, self.view = new, memoryview(new)
            else:
                self.buf[:n] = self.buf[self.start:self.end]
            self.start, self.end = 0, n
        if not flags:
            self.wait()
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
            if type(f) is tuple:
                return f
            if self.eof:
                raise EOFError
            self._recv(f)

    def poll_frame(self):
        """A frame if one can be had without blocking, else None."""
        if self.pushed:
            f, self.pushed = self.pushed, None
            return f
        f = self._parse()
        if type(f) is tuple:
            return f
        if self.eof:
            return None
        try:
            self._recv(f, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return None
        f = self._parse()
        return f if type(f) is tuple else None

    def send(self, data):
        self.sock.sendall(data)


# ---------------------------------------------------------------- 3. wsgi.input

class Input:
    """wsgi.input: streams the request's B frames; b'' once E (or A) is seen."""

    __slots__ = ('_conn', '_stream', '_buf', '_ahead', '_ahead_bytes',
                 'done', 'aborted')

    def __init__(self, conn, stream):
        self._conn = conn
        self._stream = stream
        self._buf = None             # bytearray, made on the first read
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

    def _buffer(self):
        buf = self._buf
        if buf is None:
            buf = self._buf = bytearray()
        return buf

    def read(self, size=-1):
        # Like a file: short only at the end of the body.
        buf = self._buffer()
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
        buf = self._buffer()
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
        """Consume the rest of the request's frames, through E (or A)."""
        read_frame, stream = self._conn.read_frame, self._stream
        while not self.done:
            ftype, s, payload = f = read_frame()
            if ftype == b'E' and s == stream:
                self.done = True     # the usual case: nothing left but E
            else:
                self._take(f)
        self._ahead = None


# ---------------------------------------------------------------- 4. file_wrapper

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


# ---------------------------------------------------------------- 5. response

_NO_BODY_STATUS = frozenset((204, 304))
_ERROR_BODY = b'Internal Server Error'
_ERROR_HEAD = encode_head(500, [('Content-Type', 'text/plain'),
                                ('Content-Length', str(len(_ERROR_BODY)))])
_FLUSH_AT = 1 << 20
_STATUS_CODES = {}                   # checked status line -> code (int)
_STATUS_BYTES = {}                   # code -> its u16 for the S payload

# A header name is an RFC 9110 token: a name with a space or any other
# separator would be dropped on the way to the client, silently.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z").match
_GOOD_NAMES = set()                  # names that passed, skipped next time


def _check_name(name):
    if not _TOKEN(name):
        raise ValueError('invalid header name %r' % (name,))
    if len(_GOOD_NAMES) < 512:       # a few dozen distinct names in practice
        _GOOD_NAMES.add(name)


def _content_length(value, remaining):
    """The Content-Length value as an int and as its digits alone; a
    second one must agree."""
    digits = value.strip(' \t')
    if not (digits.isdigit() and digits.isascii()):
        raise ValueError('invalid Content-Length %r' % (value,))
    n = int(digits)
    if remaining is not None and remaining != n:
        raise ValueError('conflicting Content-Length headers: %d and %d'
                         % (remaining, n))
    return n, digits


def _status_code(status):
    """Check a WSGI status line ('200 OK'); returns its code. The answer
    is remembered for the next response with the same status line."""
    if not (len(status) >= 3 and status[:3].isdigit()
            and (len(status) == 3 or status[3] == ' ') and status[0] != '0'):
        raise ValueError('invalid WSGI status %r' % status)
    code = int(status[:3])
    _STATUS_BYTES[code] = _U16.pack(code)
    if len(_STATUS_CODES) < 512:     # a few distinct lines in practice
        _STATUS_CODES[status] = code
    return code


class Response:
    """start_response/write and the frames of one response."""

    __slots__ = ('conn', 'stream', 'inp', 'head_only', 'status', 'head',
                 'head_queued', 'head_sent', 'remaining', 'parts', 'pending',
                 'ended')

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
        self.pending = 0             # body bytes in self.parts
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
        code = _STATUS_CODES.get(status)
        if code is None:
            code = _status_code(status)
        # Check and encode the headers in one pass: the S payload is built as
        # latin-1 text (lengths as two chars each) and encoded once.
        remaining = None
        text = []
        L = _LEN2
        for name, value in headers:
            if type(name) is not str or type(value) is not str:
                raise TypeError('header names and values must be str: %r'
                                % ((name, value),))
            if name not in _GOOD_NAMES:
                _check_name(name)
            if '\n' in value or '\r' in value or '\0' in value:
                raise ValueError('invalid header %r' % ((name, value),))
            n = len(name)
            if n == 14 and name.lower() == 'content-length':
                remaining, value = _content_length(value, remaining)
            m = len(value)
            if n < 256 and m < 256:
                text += (L[n], name, L[m], value)
            else:
                text += (_len2(n), name, _len2(m), value)
        payload = _STATUS_BYTES[code] + ''.join(text).encode('latin-1')
        self.status = code
        self.head = _pack_hdr(b'S', self.stream, len(payload)) + payload
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
            if self.head is None:
                raise AssertionError('the app sent body data before start_response()')
            self.parts.append(self.head)
            self.head_queued = True
        n = len(data)
        remaining = self.remaining
        if remaining is not None:
            if n >= remaining:
                if n > remaining:
                    data, n = data[:remaining], remaining
                last = True
            self.remaining = remaining - n
        parts = self.parts
        if n and not self.head_only:
            stream = self.stream
            if n <= MAX_CHUNK:
                parts += (_pack_hdr(_D, stream, n), data)
                self.pending += n
            else:
                mv = memoryview(data)
                for i in range(0, n, MAX_CHUNK):
                    piece = mv[i:i + MAX_CHUNK]
                    parts += (_pack_hdr(_D, stream, len(piece)), piece)
                    self.pending += len(piece)
                    if self.pending >= _FLUSH_AT:
                        self._flush()
        if last:
            if self.remaining:
                # A list body shorter than its Content-Length (finish()
                # does the same for iterables): X makes tandem cut the
                # client rather than pass the body off as complete.
                parts.append(frame(b'X', self.stream, b'response body shorter than Content-Length'))
            else:
                parts.append(_pack_hdr(_Z, self.stream, 0))
            self.ended = True
        if not coalesce or last or self.pending >= _FLUSH_AT:
            # _flush(), inlined: this is every response's last step.
            self.conn.send(b''.join(parts))
            parts.clear()
            self.pending = 0
            self.head_sent = True

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
                       _pack_hdr(_Z, self.stream, 0))
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
            self.conn.send(_pack_hdr(_Z, self.stream, 0))
            self.ended = True
            return
        if not self.head_queued:
            self._queue_head()
        if self.remaining:
            # Body shorter than Content-Length: X makes tandem cut the client.
            msg = b'response body shorter than Content-Length'
            self.parts.append(frame(b'X', self.stream, msg))
        else:
            self.parts.append(_pack_hdr(_Z, self.stream, 0))
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
            self.conn.send(_pack_hdr(_Z, s, 0))
        elif not self.head_sent:
            self.parts.clear()       # an S still queued is replaced by the 500
            body = b'' if self.head_only else frame(b'D', s, _ERROR_BODY)
            self.conn.send(b''.join((frame(b'S', s, _ERROR_HEAD), body,
                                     _pack_hdr(_Z, s, 0))))
        else:
            self.parts.clear()
            e = sys.exc_info()[1]
            msg = ('%s: %s' % (type(e).__name__, e))[:4096]
            self.conn.send(frame(b'X', s, msg.encode('utf-8', 'replace')))


# ---------------------------------------------------------------- 6. request

def base_environ():
    """The environ keys every request shares; handle() copies it."""
    return {
        'wsgi.version': (1, 0), 'wsgi.url_scheme': 'http',
        'wsgi.errors': sys.stderr, 'wsgi.multithread': False,
        'wsgi.multiprocess': True, 'wsgi.run_once': False,
        'wsgi.file_wrapper': FileWrapper,
        # wsgi.input returns b'' at the end of the body (werkzeug reads
        # bodies without Content-Length only when this is set).
        'wsgi.input_terminated': True,
        'SCRIPT_NAME': '', 'QUERY_STRING': '',
    }


def handle(conn, app, base, stream, payload, body=None):
    """Serve the request whose H frame carried payload: environ, app call,
    response frames, then the rest of its body frames (through E). A
    pipelined request comes whole: body is its list of chunks."""
    environ = base.copy()
    _environ_into(payload, environ)
    inp = environ['wsgi.input'] = Input(conn, stream)
    if body is not None:
        inp.done = True
        if body:
            inp._ahead = deque(body)
            inp._ahead_bytes = sum(map(len, body))
    resp = Response(conn, stream, inp, environ.get('REQUEST_METHOD') == 'HEAD')
    result = None
    try:
        result = app(environ, resp.start_response)
        rtype = type(result)
        if rtype is list or rtype is tuple:
            # Whole body known: coalesce S, D... and Z into as few writes as
            # possible (one, for a small response).
            last = len(result) - 1
            if last == 0:
                resp.chunk(result[0], True, True)
            else:
                for i, data in enumerate(result):
                    resp.chunk(data, i == last, True)
        elif rtype is FileWrapper and resp.send_file(result):
            pass
        else:
            it = iter(result)
            for data in it:
                # Before the first chunk only an abort already seen counts;
                # between later chunks, look for one (without blocking).
                if not inp.aborted:
                    resp.chunk(data)
                    for data in it:
                        if inp.poll_abort():
                            break
                        resp.chunk(data)
                break
        if not resp.ended:
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
    if not inp.done:
        inp.drain()


# ---------------------------------------------------------------- 7. worker loop

class _State:
    __slots__ = ('idle', 'stopping')

    def __init__(self):
        self.idle = False            # blocked waiting for the next request
        self.stopping = False        # SIGTERM seen


_state = _State()


def _on_sigterm(signum, frame_):
    _state.stopping = True
    if _state.idle:
        raise SystemExit(0)


def serve(sock, app):
    """Serve requests on sock until SIGTERM or EOF; returns the exit code.

    Requests come on sock, and, when tandem pipelines one behind the
    request being served, as one whole message on the worker's queue: a
    SOCK_SEQPACKET pair made here, both ends sent to tandem with R so that
    it can also take a message back. Whoever reads a message first owns
    it.

    tandem queues a request only once the one before it is all written,
    and numbers a worker's requests in order. So a queued request whose
    number follows the last one served is served at once, the common case
    under load (one recv, no sleep). Otherwise a request may have come on
    sock before it (or only numbers tandem took back were skipped), and
    sock is read first."""
    conn = Conn(sock)
    base = base_environ()
    state = _state
    queue, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    buf = bytearray(MAX_PIPELINED)
    view = memoryview(buf)
    idle_wait = select.poll()
    idle_wait.register(sock, select.POLLIN)
    idle_wait.register(queue, select.POLLIN)
    queue_fd = queue.fileno()
    nxt = 1                          # the stream that follows the last one served
    try:
        socket.send_fds(sock, [frame(b'R', 0, b'%d' % os.getpid())], [theirs.fileno(), queue_fd])
        theirs.close()
        while True:
            state.idle = True
            if state.stopping:
                return 0
            if conn.start == conn.end:   # nothing from sock in hand
                try:
                    n = queue.recv_into(buf, 0, socket.MSG_DONTWAIT)
                except (BlockingIOError, InterruptedError):
                    n = 0
                if n:
                    state.idle = False
                    if n < HDR_SIZE or HDR.unpack_from(buf)[1] != nxt:
                        nxt = _serve_sock_first(conn, app, base, nxt)
                    nxt = _after(_handle_pipelined(conn, app, base, view[:n]))
                    continue
                if conn.eof:
                    return 0
                if all(fd == queue_fd for fd, _ in idle_wait.poll()):
                    continue             # only the queue: look there again
            f = conn.read_frame()
            if _is_request(f):
                state.idle = False
                nxt = _after(f[1])
                handle(conn, app, base, f[1], f[2])
    except ProtocolError as e:
        sys.stderr.write('tandem worker %d: protocol error: %s\n' % (os.getpid(), e))
        return 4
    except (BrokenPipeError, ConnectionResetError, EOFError):
        return 0                     # tandem went away mid-response
    finally:
        view.release()
        queue.close()
        theirs.close()


def _after(stream):
    """The stream number tandem gives the request after stream (0 is
    skipped when the count wraps)."""
    return stream + 1 if stream != 0xFFFFFFFF else 1


def _is_request(f):
    """Whether frame f, read while idle, starts a request (else it is a
    late frame of one that ended)."""
    ftype = f[0]
    if ftype == b'H':
        return True
    if ftype in b'BEA':
        return False
    raise ProtocolError('unexpected %r frame while idle' % ftype)


def _serve_sock_first(conn, app, base, nxt):
    """Serve what came on sock before a queued request; returns the
    stream number that follows the last request served."""
    while True:
        f = conn.poll_frame()
        if f is None and conn.end > conn.start:
            f = conn.read_frame()    # the rest of a frame is on its way
        if f is None:
            return nxt
        if _is_request(f):
            nxt = _after(f[1])
            handle(conn, app, base, f[1], f[2])


def _handle_pipelined(conn, app, base, msg):
    """Serve a pipelined request: H, B..., E frames in one message.
    Returns its stream."""
    off, end = 0, len(msg)
    stream, head, body = None, None, []
    while off < end:
        if end - off < HDR_SIZE:
            raise ProtocolError('truncated frame in a pipelined request')
        ftype, s, length = HDR.unpack_from(msg, off)
        off += HDR_SIZE
        if end - off < length:
            raise ProtocolError('truncated frame in a pipelined request')
        payload = bytes(msg[off:off + length])
        off += length
        if head is None:
            if ftype != b'H':
                raise ProtocolError('pipelined request starts with %r' % ftype)
            stream, head = s, payload
        elif s != stream or ftype not in b'BE':
            raise ProtocolError('unexpected %r frame in a pipelined request' % ftype)
        elif ftype == b'B':
            body.append(payload)
        else:
            if off != end:
                raise ProtocolError('data after E in a pipelined request')
            handle(conn, app, base, stream, head, body)
            return stream
    raise ProtocolError('pipelined request without E')


def _worker_signals():
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)    # tandem handles Ctrl-C
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    faulthandler.register(signal.SIGUSR2, all_threads=True)


# ---------------------------------------------------------------- 8. app loading

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


def _freeze_heap():
    """Move everything the import made into the collector's permanent
    generation: collections then only walk objects made by requests, and
    (zygote) never touch, and so never un-share, the preloaded pages."""
    gc.collect()
    gc.freeze()


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
    _freeze_heap()
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

def _sched_batch():
    """Run this process (and the workers a zygote forks) under SCHED_BATCH:
    woken by a request, a worker waits for the running thread's turn to
    end instead of preempting it, so tandem, which feeds every worker, is
    not pushed off its core by the workers it wakes. Without the policy
    (not Linux), a warning, and the default policy."""
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError) as e:
        sys.stderr.write('tandem worker %d: cannot use SCHED_BATCH (%s); '
                         'running with the default CPU scheduling\n' % (os.getpid(), e))


def main(argv):
    usage = ('usage: tandem_worker.py worker|zygote --app MODULE:CALLABLE'
             ' [--chdir DIR] [--sched batch]\n')
    if not argv or argv[0] not in ('worker', 'zygote'):
        sys.stderr.write(usage)
        return 2
    mode, opts, args = argv[0], {}, argv[1:]
    while args:
        if len(args) < 2 or args[0] not in ('--app', '--chdir', '--sched'):
            sys.stderr.write(usage)
            return 2
        opts[args[0]] = args[1]
        args = args[2:]
    if '--app' not in opts:
        sys.stderr.write(usage)
        return 2
    if '--sched' in opts:
        if opts['--sched'] != 'batch':
            sys.stderr.write(usage)
            return 2
        _sched_batch()
    if '--chdir' in opts:
        os.chdir(opts['--chdir'])
    sys.path.insert(0, os.getcwd())
    with socket.socket(fileno=3) as sock:
        sock.set_inheritable(False)  # subprocesses of the app must not hold it
        if mode == 'zygote':
            return zygote(sock, opts['--app'])
        app = _import_or_report(opts['--app'])
        _freeze_heap()
        _worker_signals()
        return serve(sock, app)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
