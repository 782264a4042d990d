# A complete list response whose close() waits for the client: it returns
# as soon as the marker file named in the query string exists (the test
# creates it once it has read the whole body), or after 20 s. The body must
# reach the client before close() returns, as with mod_wsgi, which flushes
# what the application returned before it calls close().
import os
import time

BODY = b'complete before close\n'


class Body(list):
    def __init__(self, environ):
        super().__init__([BODY])
        self.errors = environ['wsgi.errors']
        self.marker = environ['QUERY_STRING']

    def close(self):
        for _ in range(200):
            if os.path.exists(self.marker):
                self.errors.write('SLOW-CLOSE saw the client read the body\n')
                return
            time.sleep(0.1)
        self.errors.write('SLOW-CLOSE gave up waiting for the client\n')


def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(BODY)))])
    return Body(environ)
