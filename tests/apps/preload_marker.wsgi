# Loaded at child start when its WSGIScriptAlias names both groups.
import os

LOADED_IN = os.getpid()


def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'preloaded in %d' % LOADED_IN]
