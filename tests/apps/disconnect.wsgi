# A long response whose client goes away: the server must stop iterating
# and still call close(). The generator holds its second block until the
# test has closed the connection (it creates the marker file named in the
# query string), or 20 s.
import os
import time


class Body:
    def __init__(self, environ):
        self.errors = environ['wsgi.errors']
        self.marker = environ['QUERY_STRING']

    def __iter__(self):
        yield b'x' * 65536
        for _ in range(200):
            if os.path.exists(self.marker):
                break
            time.sleep(0.1)
        for _ in range(4096):
            yield b'y' * 65536
        self.errors.write('DISCONNECT-ITERATION-FINISHED\n')

    def close(self):
        self.errors.write('DISCONNECT-CLOSE-CALLED\n')


def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])
    return Body(environ)
