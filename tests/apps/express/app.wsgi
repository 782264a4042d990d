# wsgi-express tests: reports what the application sees, as JSON.
import json
import os
import sys


def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    if path == '/post':
        body = b'%d' % len(environ['wsgi.input'].read())
    elif path == '/stderr':
        print('EXPRESS-STDERR-MARK', file=sys.stderr)
        sys.stderr.flush()
        body = b'logged'
    else:
        keys = ['SCRIPT_NAME', 'PATH_INFO', 'mod_wsgi.process_group',
                'mod_wsgi.application_group', 'EXPRESS_TEST', 'EXPRESS_PASSED',
                'wsgi.url_scheme', 'HTTPS']
        info = {k: environ.get(k) for k in keys}
        info.update(uid=os.getuid(), cwd=os.getcwd(), sys_path=sys.path,
                    prefix=sys.prefix, pid=os.getpid())
        body = json.dumps(info).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]


def other(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'other callable']
