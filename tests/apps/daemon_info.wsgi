import json, os, sys, time

def application(environ, start_response):
    q = environ.get('QUERY_STRING', '')
    if q.startswith('sleep='):
        time.sleep(float(q[6:]))
    out = {
        'pid': os.getpid(),
        'uid': os.getuid(),
        'gid': os.getgid(),
        'process_group': environ.get('mod_wsgi.process_group'),
        'application_group': environ.get('mod_wsgi.application_group'),
        'multithread': environ['wsgi.multithread'],
        'multiprocess': environ['wsgi.multiprocess'],
        'request_id': environ.get('mod_wsgi.request_id'),
        'sys_path': sys.path,
        'cwd': os.getcwd(),
        'url_scheme': environ['wsgi.url_scheme'],
        'remote_addr': environ.get('REMOTE_ADDR'),
    }
    environ['wsgi.errors'].write('daemon_info served by %d\n' % os.getpid())
    body = json.dumps(out).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]
