import os
import json, sys

def application(environ, start_response):
    if environ.get('QUERY_STRING', '').startswith('log-method'):
        environ['wsgi.errors'].write('METHOD-SEEN %s %s\n' % (environ['QUERY_STRING'], environ['REQUEST_METHOD']))
    out = {}
    for k, v in environ.items():
        if isinstance(v, (str, int, bool, tuple)):
            out[k] = v
        else:
            out[k] = '<%s>' % type(v).__name__
    out['__argv__'] = sys.argv
    out['__sys_path__'] = sys.path
    out['__prefix__'] = sys.prefix
    out['__flags_optimize__'] = sys.flags.optimize
    out['__dont_write_bytecode__'] = sys.dont_write_bytecode
    out['__warnoptions__'] = sys.warnoptions
    out['__egg_cache__'] = os.environ.get('PYTHON_EGG_CACHE')
    out['__module__'] = __name__
    body = json.dumps(out).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]
