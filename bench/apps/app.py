"""The benchmark's WSGI application: one dispatcher, the same in every variant.

Every server (both Apache modules, gunicorn, Granian) loads this module and
calls `application`. The dispatch is one dict lookup on PATH_INFO, so every
variant pays the same small price for it.

  /hello      12 bytes, "hello world\n"
  /1mib       a 1 MiB response body (one bytes object)
  /upload     reads wsgi.input to the end in 64 KiB reads, answers the byte count
  /stream     1,000 small chunks yielded one by one
  /flushcheck a block, a 0.5 s pause, a block: does the server send the first
              block before the application produces the next? (PEP 3333)
  /flask      a Flask view rendering a Jinja2 template
  /django     a Django view rendering a Django template
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

HELLO = b"hello world\n"
ONE_MIB = b"x" * (1024 * 1024)
CHUNKS = [b"chunk %04d\n" % i for i in range(1000)]


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(HELLO)))])
    return [HELLO]


def one_mib(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(ONE_MIB)))])
    return [ONE_MIB]


def upload(environ, start_response):
    stream = environ["wsgi.input"]
    total = 0
    while True:
        block = stream.read(65536)
        if not block:
            break
        total += len(block)
    body = b"%d\n" % total
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


def stream(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    for chunk in CHUNKS:
        yield chunk


def flushcheck(environ, start_response):
    import time
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first\n"
    time.sleep(0.5)
    yield b"second\n"


def not_found(environ, start_response):
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]


from flask_app import app as flask_app  # noqa: E402
from django_app import application as django_app  # noqa: E402

ROUTES = {
    "/hello": hello,
    "/1mib": one_mib,
    "/upload": upload,
    "/stream": stream,
    "/flushcheck": flushcheck,
    "/flask": flask_app,
    "/django": django_app,
}


def application(environ, start_response):
    return ROUTES.get(environ.get("PATH_INFO", ""), not_found)(environ, start_response)
