import time

def application(environ, start_response):
    q = environ.get('QUERY_STRING', '')
    if q.startswith('big='):
        n = int(q[4:])
        start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                                  ('Content-Length', str(n))])
        block = bytes(range(256)) * 256   # 64 KiB
        def gen():
            left = n
            while left > 0:
                b = block[:min(left, len(block))]
                left -= len(b)
                yield b
        return gen()
    # slow generator: three chunks, one per 'delay' seconds
    delay = float(q[6:]) if q.startswith('delay=') else 1.0
    start_response('200 OK', [('Content-Type', 'text/plain')])
    def slow():
        for i in range(3):
            yield ('chunk %d\n' % i).encode()
            time.sleep(delay)
    return slow()
