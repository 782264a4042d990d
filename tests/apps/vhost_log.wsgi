# Writes one line through each of the ways an application logs, tagged with
# the query string's tag=, and fails when asked to, so a test can see which
# error log each line reached.
import sys
from urllib.parse import parse_qs

def application(environ, start_response):
    q = parse_qs(environ.get('QUERY_STRING', ''))
    tag = q.get('tag', ['none'])[0]
    print('PRINT-%s' % tag, file=sys.stderr)
    sys.stderr.flush()
    environ['wsgi.errors'].write('ERRORS-%s\n' % tag)
    if 'raise' in q:
        raise RuntimeError('RAISE-%s' % tag)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [tag.encode()]
