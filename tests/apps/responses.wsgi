import os

class Closing:
    def __init__(self, environ, chunks):
        self.environ = environ
        self.chunks = chunks
    def __iter__(self):
        return iter(self.chunks)
    def close(self):
        self.environ['wsgi.errors'].write('CLOSE-CALLED %s\n' % self.environ['QUERY_STRING'])

def application(environ, start_response):
    q = environ.get('QUERY_STRING', '')
    if q == 'generator':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        def gen():
            for i in range(5):
                yield b'chunk%d;' % i
        return gen()
    if q == 'write':
        write = start_response('200 OK', [('Content-Type', 'text/plain')])
        write(b'written;')
        return [b'returned']
    if q == 'close':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return Closing(environ, [b'a', b'b'])
    if q == 'close-raise':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        def boom():
            yield b'first'
            raise RuntimeError('generator failed midway')
        c = Closing(environ, boom())
        return c
    if q == 'too-long':
        start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '5')])
        return [b'12345', b'6789']
    if q == 'crlf':
        start_response('200 OK', [('X-Evil', 'a\r\nSet-Cookie: injected=1')])
        return [b'should not be sent']
    if q == 'crlf-name':
        start_response('200 OK', [('X-Evil\r\nSet-Cookie', 'injected=1')])
        return [b'should not be sent']
    if q == 'non-latin1':
        start_response('200 OK', [('X-Uni', '\u263a')])
        return [b'should not be sent']
    if q == 'bad-status':
        start_response('OK 200', [])
        return [b'x']
    if q == 'str-body':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return ['not bytes']
    if q == 'exc-info':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        try:
            raise ValueError('oops')
        except ValueError:
            import sys
            start_response('503 Service Unavailable', [('Content-Type', 'text/plain'), ('X-Replaced', '1')], sys.exc_info())
        return [b'replaced']
    if q == 'twice':
        start_response('200 OK', [])
        start_response('200 OK', [])
        return [b'x']
    if q == 'no-start':
        return [b'never started']
    if q == 'raise':
        raise RuntimeError('application raised on purpose')
    if q == 'not-found':
        start_response('404 Not Found', [('Content-Type', 'text/plain')])
        return [b'application 404 body']
    if q == 'empty':
        start_response('204 No Content', [])
        return []
    if q == 'status-custom':
        start_response('299 Custom Thing', [('Content-Type', 'text/plain')])
        return [b'custom']
    if q == 'multi-header':
        start_response('200 OK', [('Set-Cookie', 'a=1'), ('Set-Cookie', 'b=2'), ('Content-Type', 'text/plain; charset=utf-8')])
        return [b'ok']
    if q.startswith('file'):
        name = 'big.bin' if q == 'file-big' else 'data.bin'
        path = environ['SCRIPT_FILENAME'].rsplit('/', 1)[0] + '/' + name
        f = open(path, 'rb')
        if q == 'file-offset':
            f.seek(10)
        headers = [('Content-Type', 'application/octet-stream')]
        if q == 'file-length':
            # Content-Length shorter than the file: only that much is sent.
            headers.append(('Content-Length', '1000'))
        start_response('200 OK', headers)
        return environ['wsgi.file_wrapper'](f, 4096)
    if q == 'big':
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return [b'x' * (1 << 20)]
    if q == 'print':
        print('PRINTED-TO-STDOUT')
        import sys
        sys.stderr.write('WRITTEN-TO-STDERR\n')
        environ['wsgi.errors'].write('WRITTEN-TO-WSGI-ERRORS\n')
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'printed']
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'default']
