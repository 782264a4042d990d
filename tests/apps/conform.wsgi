# The conformance test's application: tests/conformance.rs sends the same
# requests to the C mod_wsgi and to mod_wsgi-rs and compares the answers.
# The request header X-Case picks a behaviour; without it the application
# answers with its environ, one `key=repr(value)` line per key, sorted.
import io
import sys


def dump(environ):
    lines = []
    for k in sorted(environ):
        v = environ[k]
        if isinstance(v, (str, bytes, int, float, bool, tuple, type(None))):
            r = repr(v)
        else:
            r = '<%s>' % type(v).__name__
        lines.append('%s=%s' % (k, r))
    return ('\n'.join(lines) + '\n').encode('utf-8', 'backslashreplace')


def text(start_response, status, body, headers=None):
    start_response(status, headers if headers is not None else [('Content-Type', 'text/plain')])
    return [body]


def application(environ, start_response):
    case = environ.get('HTTP_X_CASE', 'env')
    sr = start_response

    if case == 'env':
        return text(sr, '200 OK', dump(environ))
    if case == 'read':
        data = environ['wsgi.input'].read()
        return text(sr, '200 OK', b'%d:%s' % (len(data), data))
    if case == 'read-n':
        inp = environ['wsgi.input']
        parts = []
        while True:
            b = inp.read(3)
            if not b:
                break
            parts.append(b)
        return text(sr, '200 OK', b'|'.join(parts))
    if case == 'readline':
        return text(sr, '200 OK', b'|'.join(environ['wsgi.input'].readlines()))
    if case == 'errors-attrs':
        e = environ['wsgi.errors']
        attrs = [type(e).__name__] + [
            repr(getattr(e, a, '<none>'))
            for a in ('encoding', 'errors', 'line_buffering', 'write_through', 'name')]
        e.write('ERRORS-TEXT caf\xe9 \udcff\n')
        e.buffer.write(b'ERRORS-BYTES\n')
        print('ERRORS-PRINT', file=e)
        e.flush()
        return text(sr, '200 OK', ' '.join(attrs).encode())
    if case == 'input-args':
        inp = environ['wsgi.input']
        out = []
        calls = ("inp.readline(4)", "inp.read(-1)", "inp.read(0)",
                 "inp.readline()", "inp.readlines(5)", "list(inp)", "inp.read(2)")
        if environ.get('QUERY_STRING') == 'none':
            calls = ("inp.readline(None)", "inp.readlines(None)", "inp.read(None)")
        for call in calls:
            try:
                out.append('%s=%r' % (call, eval(call)))
            except Exception as e:
                out.append('%s raised %s' % (call, type(e).__name__))
        return text(sr, '200 OK', '\n'.join(out).encode())
    if case == 'input-type':
        inp = environ['wsgi.input']
        names = sorted(n for n in dir(inp) if not n.startswith('__'))
        return text(sr, '200 OK', repr(names).encode())

    # Response shapes.
    if case == 'list':
        return text(sr, '200 OK', b'one')
    if case == 'list-many':
        sr('200 OK', [('Content-Type', 'text/plain')])
        return [b'a', b'', b'bc', b'def']
    if case == 'generator':
        sr('200 OK', [('Content-Type', 'text/plain')])
        def gen():
            for i in range(3):
                yield b'chunk%d;' % i
        return gen()
    if case == 'big-list':
        sr('200 OK', [('Content-Type', 'application/octet-stream')])
        return [bytes(range(256)) * 4096]
    if case == 'big-generator':
        sr('200 OK', [('Content-Type', 'application/octet-stream')])
        def gen():
            for i in range(16):
                yield bytes([i]) * 65536
        return gen()
    if case == 'generator-empty-first':
        sr('200 OK', [('Content-Type', 'text/plain')])
        def gen():
            yield b''
            yield b'after-empty'
        return gen()
    if case == 'write':
        write = sr('200 OK', [('Content-Type', 'text/plain')])
        write(b'written;')
        return [b'returned']
    if case == 'write-only':
        write = sr('200 OK', [('Content-Type', 'text/plain')])
        write(b'written')
        return []
    if case == 'empty-list':
        sr('200 OK', [('Content-Type', 'text/plain')])
        return []
    if case == 'empty-bytes':
        sr('200 OK', [('Content-Type', 'text/plain')])
        return [b'']
    if case == 'no-content-type':
        sr('200 OK', [])
        return [b'no type']
    if case == 'cl-exact':
        return text(sr, '200 OK', b'abcdef', [('Content-Length', '6')])
    if case == 'cl-short':
        return text(sr, '200 OK', b'abcdef', [('Content-Length', '3')])
    if case == 'cl-short-many':
        sr('200 OK', [('Content-Length', '4')])
        return [b'abc', b'def', b'ghi']
    if case == 'cl-long':
        return text(sr, '200 OK', b'abc', [('Content-Length', '10')])
    if case == 'cl-zero':
        return text(sr, '200 OK', b'abc', [('Content-Length', '0')])
    if case == 'cl-bad':
        return text(sr, '200 OK', b'abc', [('Content-Length', 'abc')])
    if case == 'status-204':
        sr('204 No Content', [])
        return []
    if case == 'status-204-body':
        sr('204 No Content', [('Content-Type', 'text/plain')])
        return [b'body of a 204']
    if case == 'status-304':
        sr('304 Not Modified', [('ETag', '"x"')])
        return []
    if case == 'status-304-body':
        sr('304 Not Modified', [('ETag', '"x"'), ('Content-Length', '3')])
        return [b'abc']
    if case == 'status-404':
        return text(sr, '404 Not Found', b'app 404 body')
    if case == 'status-500':
        return text(sr, '500 Internal Server Error', b'app 500 body')
    if case == 'status-302':
        sr('302 Found', [('Location', '/elsewhere')])
        return [b'moved']
    if case == 'status-302-relative':
        sr('302 Found', [('Location', 'elsewhere')])
        return [b'moved']
    if case == 'status-custom':
        return text(sr, '299 Custom Thing', b'custom')
    if case == 'status-lower-reason':
        return text(sr, '200 all good', b'lower')
    if case == 'status-no-reason':
        return text(sr, '200', b'no reason')
    if case == 'status-trailing-space':
        return text(sr, '200 ', b'trailing space')
    if case == 'status-abc':
        return text(sr, 'abc', b'abc status')
    if case == 'status-99':
        return text(sr, '99 Low', b'low')
    if case == 'status-1000':
        return text(sr, '1000 High', b'high')
    if case == 'status-bytes':
        return text(sr, b'200 OK', b'bytes status')
    if case == 'status-crlf':
        return text(sr, '200 OK\r\nX-Injected: 1', b'crlf status')
    if case == 'multi-header':
        sr('200 OK', [('Set-Cookie', 'a=1'), ('Set-Cookie', 'b=2'), ('X-Dup', 'one'), ('X-Dup', 'two'), ('Content-Type', 'text/plain')])
        return [b'multi']
    if case == 'header-case':
        sr('200 OK', [('x-lower-case', 'v'), ('X-MiXeD', 'V'), ('content-type', 'text/html')])
        return [b'case']
    if case == 'header-empty-value':
        sr('200 OK', [('X-Empty', ''), ('Content-Type', 'text/plain')])
        return [b'empty value']
    if case == 'header-spaces':
        sr('200 OK', [('X-Spaces', '  padded  '), ('Content-Type', 'text/plain')])
        return [b'spaces']
    if case == 'header-latin1':
        sr('200 OK', [('X-Latin1', 'caf\xe9'), ('Content-Type', 'text/plain')])
        return [b'latin1']
    if case == 'header-non-latin1':
        sr('200 OK', [('X-Uni', '\u263a')])
        return [b'should not be sent']
    if case == 'header-crlf-value':
        sr('200 OK', [('X-Evil', 'a\r\nSet-Cookie: injected=1')])
        return [b'should not be sent']
    if case == 'header-lf-value':
        sr('200 OK', [('X-Evil', 'a\nSet-Cookie: injected=1')])
        return [b'should not be sent']
    if case == 'header-crlf-name':
        sr('200 OK', [('X-Evil\r\nSet-Cookie', 'injected=1')])
        return [b'should not be sent']
    if case == 'header-colon-name':
        sr('200 OK', [('X-Bad:Name', 'v')])
        return [b'colon in name']
    if case == 'header-space-name':
        sr('200 OK', [('X Bad', 'v')])
        return [b'space in name']
    if case == 'header-bytes-name':
        sr('200 OK', [(b'X-Bytes', 'v')])
        return [b'bytes name']
    if case == 'header-bytes-value':
        sr('200 OK', [('X-Bytes', b'v')])
        return [b'bytes value']
    if case == 'header-int-value':
        sr('200 OK', [('X-Int', 1)])
        return [b'int value']
    if case == 'header-not-tuple':
        sr('200 OK', [['X-List', 'v']])
        return [b'list item']
    if case == 'header-three-tuple':
        sr('200 OK', [('X-Three', 'v', 'w')])
        return [b'three']
    if case == 'headers-tuple':
        sr('200 OK', (('X-Tuple', 'v'),))
        return [b'tuple headers']
    if case == 'header-hop-by-hop':
        sr('200 OK', [('Connection', 'keep-alive'), ('Content-Type', 'text/plain')])
        return [b'hop']
    if case == 'header-transfer-encoding':
        sr('200 OK', [('Transfer-Encoding', 'chunked'), ('Content-Type', 'text/plain')])
        return [b'te']
    if case == 'header-status':
        sr('200 OK', [('Status', '404'), ('Content-Type', 'text/plain')])
        return [b'status header']
    if case == 'header-location-200':
        sr('200 OK', [('Location', 'http://example.com/'), ('Content-Type', 'text/plain')])
        return [b'location on 200']
    if case == 'validators':
        sr('200 OK', [('ETag', '"v1"'), ('Last-Modified', 'Sat, 01 Jan 2000 00:00:00 GMT'),
                      ('Content-Type', 'text/plain')])
        return [b'validated body']
    if case == 'content-type-case':
        sr('200 OK', [('Content-Type', 'Text/HTML; Charset=UTF-8')])
        return [b'case']
    if case == 'last-modified-odd':
        sr('200 OK', [('Last-Modified', 'Saturday, 01-Jan-00 00:00:00 GMT'), ('Content-Type', 'text/plain')])
        return [b'odd date']
    if case == 'header-www-authenticate':
        sr('401 Unauthorized', [('WWW-Authenticate', 'Basic realm="x"'), ('Content-Type', 'text/plain')])
        return [b'auth please']

    # Bad bodies.
    if case == 'str-body':
        sr('200 OK', [('Content-Type', 'text/plain')])
        return ['not bytes']
    if case == 'str-body-late':
        sr('200 OK', [('Content-Type', 'text/plain')])
        def gen():
            yield b'first;'
            yield 'second is str'
        return gen()
    if case == 'str-whole':
        sr('200 OK', [('Content-Type', 'text/plain')])
        return 'a str result'
    if case == 'bytes-whole':
        sr('200 OK', [('Content-Type', 'text/plain')])
        return b'bytes result'
    if case == 'bytearray':
        sr('200 OK', [('Content-Type', 'text/plain')])
        return [bytearray(b'bytearray block')]
    if case == 'memoryview':
        sr('200 OK', [('Content-Type', 'text/plain')])
        return [memoryview(b'memoryview block')]
    if case == 'none-body':
        sr('200 OK', [('Content-Type', 'text/plain')])
        return None
    if case == 'none-item':
        sr('200 OK', [('Content-Type', 'text/plain')])
        return [b'a', None]
    if case == 'int-body':
        sr('200 OK', [('Content-Type', 'text/plain')])
        return 42
    if case == 'write-str':
        write = sr('200 OK', [('Content-Type', 'text/plain')])
        write('str to write')
        return []

    # Errors.
    if case == 'raise-before':
        raise RuntimeError('raised before start_response')
    if case == 'raise-after-start':
        sr('200 OK', [('Content-Type', 'text/plain')])
        raise RuntimeError('raised after start_response')
    if case == 'raise-in-iter-first':
        sr('200 OK', [('Content-Type', 'text/plain')])
        def gen():
            raise RuntimeError('raised at the first next()')
            yield b'never'
        return gen()
    if case == 'raise-in-iter-later':
        sr('200 OK', [('Content-Type', 'text/plain')])
        def gen():
            yield b'first;'
            raise RuntimeError('raised after the first block')
        return gen()
    if case == 'raise-in-iter-later-cl':
        sr('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '20')])
        def gen():
            yield b'first;'
            raise RuntimeError('raised after the first block')
        return gen()
    if case == 'raise-in-close':
        class C:
            def __iter__(self):
                return iter([b'body;'])
            def close(self):
                raise RuntimeError('raised in close')
        sr('200 OK', [('Content-Type', 'text/plain')])
        return C()
    if case == 'no-start':
        return [b'never started']
    if case == 'no-start-empty':
        return []
    if case == 'exc-info-before-send':
        sr('200 OK', [('Content-Type', 'text/plain'), ('X-First', '1')])
        try:
            raise ValueError('oops')
        except ValueError:
            sr('503 Service Unavailable', [('Content-Type', 'text/plain'), ('X-Replaced', '1')], sys.exc_info())
        return [b'replaced']
    if case == 'exc-info-none':
        sr('200 OK', [('Content-Type', 'text/plain')], None)
        return [b'exc_info None']
    if case == 'exc-info-first':
        try:
            raise ValueError('first call with exc_info')
        except ValueError:
            sr('500 Oops', [('Content-Type', 'text/plain')], sys.exc_info())
        return [b'first call with exc_info']
    if case == 'exc-info-after-send':
        sr('200 OK', [('Content-Type', 'text/plain')])
        def gen():
            yield b'first;'
            try:
                raise ValueError('late error')
            except ValueError:
                sr('500 Internal Server Error', [('Content-Type', 'text/plain')], sys.exc_info())
            yield b'not reached'
        return gen()
    if case == 'exc-info-after-write':
        write = sr('200 OK', [('Content-Type', 'text/plain')])
        write(b'written;')
        try:
            raise ValueError('late error')
        except ValueError:
            sr('500 Internal Server Error', [('Content-Type', 'text/plain')], sys.exc_info())
        return [b'not reached']
    if case == 'twice':
        sr('200 OK', [('Content-Type', 'text/plain')])
        sr('201 Created', [('Content-Type', 'text/plain')])
        return [b'twice']
    if case == 'twice-caught':
        sr('200 OK', [('Content-Type', 'text/plain')])
        try:
            sr('201 Created', [])
            outcome = b'second call accepted'
        except Exception as e:
            outcome = ('%s: %s' % (type(e).__name__, e)).encode()
        return [outcome]
    if case == 'start-bad-args':
        try:
            sr('200 OK')
            outcome = b'accepted'
        except Exception as e:
            outcome = type(e).__name__.encode()
        sr('200 OK', [('Content-Type', 'text/plain')])
        return [outcome]

    # wsgi.file_wrapper.
    if case.startswith('file'):
        path = environ['SCRIPT_FILENAME'].rsplit('/', 1)[0] + '/data.bin'
        headers = [('Content-Type', 'application/octet-stream')]
        if case == 'file':
            f = open(path, 'rb')
        elif case == 'file-offset':
            f = open(path, 'rb')
            f.seek(100)
        elif case == 'file-cl-short':
            f = open(path, 'rb')
            headers.append(('Content-Length', '50'))
        elif case == 'file-bytesio':
            f = io.BytesIO(b'0123456789' * 10)
        elif case == 'file-bytesio-cl':
            f = io.BytesIO(b'0123456789' * 10)
            headers.append(('Content-Length', '25'))
        elif case == 'file-text':
            f = open(path, 'r', encoding='latin-1')
        elif case == 'file-no-read':
            f = object()
        else:
            f = open(path, 'rb')
        sr('200 OK', headers)
        if case == 'file-blksize':
            return environ['wsgi.file_wrapper'](f, 7)
        return environ['wsgi.file_wrapper'](f)
    if case == 'wrapper-type':
        fw = environ['wsgi.file_wrapper']
        w = fw(io.BytesIO(b'abc'))
        names = sorted(n for n in dir(w) if not n.startswith('__'))
        return text(sr, '200 OK', repr(names).encode() + b' ' + b''.join(w))

    return text(sr, '400 Bad Request', b'unknown case ' + case.encode())
