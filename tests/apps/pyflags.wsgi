# What WSGIPythonHashSeed, WSGIRestrictStdin and WSGIRestrictSignal leave
# the application with.
import json
import signal
import sys


def application(environ, start_response):
    out = {'hash_randomization': sys.flags.hash_randomization,
           'hash_abc': hash('abc')}
    try:
        out['stdin'] = repr(sys.stdin.read())
    except Exception as e:
        out['stdin'] = '%s: %s' % (type(e).__name__, e)
    try:
        signal.signal(signal.SIGUSR2, lambda *a: None)
        out['signal'] = 'registered'
    except Exception as e:
        out['signal'] = '%s: %s' % (type(e).__name__, e)
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps(out).encode()]
