import hashlib

def application(environ, start_response):
    mode = environ.get('QUERY_STRING', '') or 'read'
    inp = environ['wsgi.input']
    if mode == 'read':
        data = inp.read()
    elif mode == 'readn':
        parts = []
        while True:
            b = inp.read(7)
            if not b:
                break
            parts.append(b)
        assert inp.read(7) == b''
        data = b''.join(parts)
    elif mode == 'readline':
        parts = []
        while True:
            line = inp.readline()
            if not line:
                break
            parts.append(b'[' + line + b']')
        data = b''.join(parts)
    elif mode == 'readlines':
        data = b'|'.join(inp.readlines())
    elif mode == 'iter':
        data = b'|'.join(line for line in inp)
    elif mode == 'hash':
        # Streams a big body through a bounded buffer.
        h = hashlib.sha256()
        n = 0
        while True:
            b = inp.read(65536)
            if not b:
                break
            n += len(b)
            h.update(b)
        data = ('%d %s' % (n, h.hexdigest())).encode()
    elif mode == 'partial':
        # Reads the first MiB in pieces and leaves the rest unread.
        n = 0
        while n < 1048576:
            b = inp.read(65536)
            if not b:
                break
            n += len(b)
        data = ('partial %d' % n).encode()
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])
    return [data]
