# wsgi.file_wrapper over objects whose read() logs: a real file must go out
# through Apache's file buckets (read() never called), a file-like object
# without fileno() is iterated (read() called).
import io
import os

HERE = os.path.dirname(__file__)


class LoudFile(io.FileIO):
    errors = None

    def read(self, *args):
        self.errors.write('PYTHON-READ-CALLED %s\n' % self.tag)
        return super().read(*args)


class LoudBytes(io.BytesIO):
    errors = None

    def read(self, *args):
        self.errors.write('PYTHON-READ-CALLED %s\n' % self.tag)
        return super().read(*args)


def application(environ, start_response):
    q = environ.get('QUERY_STRING', '')
    path = os.path.join(HERE, 'data.bin')
    headers = [('Content-Type', 'application/octet-stream')]
    if q.startswith('bytes'):
        with open(path, 'rb') as f:
            f = LoudBytes(f.read())
    else:
        f = LoudFile(path, 'rb')
    f.errors = environ['wsgi.errors']
    f.tag = q
    if q.endswith('-length'):
        headers.append(('Content-Length', '1000'))
    start_response('200 OK', headers)
    return environ['wsgi.file_wrapper'](f, 8192)
