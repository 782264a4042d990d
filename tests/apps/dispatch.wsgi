# WSGIDispatchScript for tests/dispatch.rs: the query string chooses.
from urllib.parse import parse_qs


def _q(environ, key):
    v = parse_qs(environ.get('QUERY_STRING', '')).get(key)
    return v[0] if v else None


def process_group(environ):
    if _q(environ, 'boom'):
        raise RuntimeError('dispatch boom')
    # Seen by the test to prove the environ carries the request and the
    # values chosen so far.
    environ['wsgi.errors'].write('dispatch saw %s %s\n' % (
        environ['REQUEST_URI'], environ['mod_wsgi.callable_object']))
    return _q(environ, 'pg')


def application_group(environ):
    return _q(environ, 'ag')


def callable_object(environ):
    if _q(environ, 'badtype'):
        return 42
    return _q(environ, 'co')
