# Like a framework whose start-up cannot be retried in the same process
# (Django): the first import fails until the file 'startup_ok' exists next
# to this script, and once an import failed, every later import in the same
# process fails too. Only a new process (startup-timeout) recovers.
import builtins, os

if getattr(builtins, '_startup_once_failed', False):
    raise RuntimeError('start-up already failed in this process; it cannot be retried')
if not os.path.exists(os.path.join(os.path.dirname(__file__), 'startup_ok')):
    builtins._startup_once_failed = True
    raise RuntimeError('not configured yet: startup_ok is missing')

def application(environ, start_response):
    body = ('started in %d' % os.getpid()).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
