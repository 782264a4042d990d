import mod_wsgi

def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [('%s|%s|%r' % (mod_wsgi.process_group, mod_wsgi.application_group, mod_wsgi.version)).encode()]
