# wsgi-express tests: an application imported as a module.
import os


def wsgi_app(environ, start_response):
    body = ('module app cwd=%s' % os.getcwd()).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]


application = wsgi_app
