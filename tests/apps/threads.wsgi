import threading

def application(environ, start_response):
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'threads ok']
