import venv_marker

def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [venv_marker.WHERE.encode()]
