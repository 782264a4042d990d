# Daemon-mode resource tests: ?alloc=N allocates N bytes, ?burn=S spins the
# CPU for S seconds of process CPU time, ?gil=S holds the GIL for S seconds
# (libc sleep() called through ctypes.PyDLL, which does not release it),
# ?rlimits reports the process's limits, ?sleep=S sleeps (GIL released).
import ctypes, json, os, resource, time

def application(environ, start_response):
    q = environ.get('QUERY_STRING', '')
    key, _, value = q.partition('=')
    out = {'pid': os.getpid()}
    environ['wsgi.errors'].write('limits %s started in %d\n' % (q, os.getpid()))
    environ['wsgi.errors'].flush()
    if key == 'alloc':
        block = bytearray(int(value))
        block[-1] = 1
        out['allocated'] = len(block)
        del block
    elif key == 'burn':
        start = time.process_time()
        n = 0
        while time.process_time() - start < float(value):
            n += 1
        out['burned'] = n
    elif key == 'gil':
        libc = ctypes.PyDLL('libc.so.6')
        libc.sleep(int(value))
    elif key == 'sleep':
        time.sleep(float(value))
    elif key == 'rlimits':
        for name in ('RLIMIT_DATA', 'RLIMIT_AS', 'RLIMIT_CPU'):
            out[name] = resource.getrlimit(getattr(resource, name))[0]
        out['switchinterval'] = __import__('sys').getswitchinterval()
        out['nice'] = os.nice(0)
    body = json.dumps(out).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]
