import builtins

def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [str(getattr(builtins, 'MOD_WSGI_RS_IMPORTED', 0)).encode()]
