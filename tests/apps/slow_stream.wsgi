import time

def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    def gen():
        yield b'first block\n'
        # Held until the client says it saw the first block, or 20 s.
        marker = environ['QUERY_STRING']
        for _ in range(200):
            try:
                open(marker).close()
                break
            except OSError:
                time.sleep(0.1)
        yield b'second block\n'
    return gen()
