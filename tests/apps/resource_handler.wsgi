# WSGIHandlerScript for tests/dispatch.rs: serves the requested file.
import json, os


def handle_request(environ, start_response):
    with open(environ['SCRIPT_FILENAME'], 'rb') as f:
        content = f.read().decode()
    body = json.dumps({
        'pid': os.getpid(),
        'script_filename': environ['SCRIPT_FILENAME'],
        'handler_script': environ['mod_wsgi.handler_script'],
        'process_group': environ['mod_wsgi.process_group'],
        'application_group': environ['mod_wsgi.application_group'],
        'callable_object': environ['mod_wsgi.callable_object'],
        'authorization': environ.get('HTTP_AUTHORIZATION'),
        'content': content,
    }).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]


def application(environ, start_response):
    start_response('500 Wrong Callable', [('Content-Type', 'text/plain')])
    return [b'application must not be called for a handler script']
