# WSGIAccessScript for tests/auth.rs: the answer depends on the URL, so one
# script covers every case.


def allow_access(environ, host):
    uri = environ['REQUEST_URI']
    environ['wsgi.errors'].write('ACCESS-CHECK %s %s\n' % (uri, host))
    if uri.startswith('/local'):
        return host == '127.0.0.1'
    if uri.startswith('/elsewhere'):
        return host == '192.0.2.1'
    if uri.startswith('/nobody'):
        return None
    if uri.startswith('/broken'):
        raise KeyError('access script exploded')
    return 'maybe'
