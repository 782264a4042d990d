# PEP 3333: start_response(status, headers, exc_info) after the headers
# went out must re-raise exc_info, so the server aborts the response.
import sys


def application(environ, start_response):
    write = start_response('200 OK', [('Content-Type', 'text/plain')])
    write(b'headers are out;')
    try:
        raise ValueError('raised after the headers were sent')
    except ValueError:
        try:
            start_response('500 Internal Server Error',
                           [('Content-Type', 'text/plain')], sys.exc_info())
        except ValueError:
            environ['wsgi.errors'].write('EXC-INFO-RE-RAISED\n')
            raise
    environ['wsgi.errors'].write('EXC-INFO-SWALLOWED\n')
    return [b'should not be sent']
