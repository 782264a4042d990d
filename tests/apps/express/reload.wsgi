# wsgi-express tests: answers with helper.VALUE, to see code changes picked up.
import helper


def application(environ, start_response):
    body = helper.VALUE.encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
