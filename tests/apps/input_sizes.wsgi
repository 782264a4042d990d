# wsgi.input's size arguments: readline(size) and readlines(hint), and what
# every method gives once the body is used up.
def application(environ, start_response):
    inp = environ['wsgi.input']
    q = environ.get('QUERY_STRING', '')
    if q == 'readline-size':
        parts = []
        while True:
            line = inp.readline(4)
            if not line:
                break
            parts.append(b'[' + line + b']')
        out = b''.join(parts)
    elif q == 'readlines-hint':
        first = inp.readlines(10)
        rest = inp.readlines()
        out = b'|'.join(first) + b'#' + b'|'.join(rest)
    elif q == 'mixed':
        a = inp.read(3)
        b = inp.readline()
        c = inp.readline(0)
        d = inp.readline(-1)
        e = inp.read(-1)
        out = repr((a, b, c, d, e)).encode()
    else:
        inp.read()
        out = repr((inp.read(), inp.read(5), inp.readline(), inp.readline(3),
                    inp.readlines(), inp.readlines(4), list(inp))).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [out]
