# Who Apache says the client is, and where the application ran.
import os

def application(environ, start_response):
    body = ('user=%s auth=%s pid=%d process_group=%s' % (
        environ.get('REMOTE_USER'), environ.get('AUTH_TYPE'), os.getpid(),
        environ.get('mod_wsgi.process_group'))).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'),
                              ('Content-Length', str(len(body)))])
    return [body]
