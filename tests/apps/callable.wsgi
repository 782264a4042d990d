def myapp(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'from myapp']

def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'from application']
