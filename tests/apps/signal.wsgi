import signal

def application(environ, start_response):
    signal.signal(signal.SIGTERM, lambda *a: None)
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'registered']
