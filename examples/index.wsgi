# The landing page of scripts/serve-examples.sh: a raw WSGI application that
# lists the examples, mounted last with "WSGIScriptAlias /" so that it gets
# every URL the other aliases do not claim.
import html
import sys

EXAMPLES = [
    ("/hello", "Hello World", "a raw WSGI application (hello/myapp.wsgi)"),
    ("/flask/", "Flask", "a Flask app through its .wsgi wrapper (flask/hello.wsgi)"),
    ("/flask/greet/Apache", "Flask + Jinja2", "a rendered template"),
    ("/venv/", "virtualenv", "an 'application' file that activates a virtualenv with activate_this.py"),
    ("/django/", "Django", "a Django project through its wsgi.py"),
]

PAGE = """<!doctype html>
<html>
<head><meta charset="utf-8"><title>mod_wsgi-rs examples</title></head>
<body>
<h1>mod_wsgi-rs examples</h1>
<ul>
{items}
</ul>
<p>POST to the Flask example: <code>curl -d 'a=1' http://{host}{prefix}/flask/echo</code></p>
<p>{server} &middot; Python {python} &middot; process group '{group}' &middot; application group '{app_group}'</p>
</body>
</html>
"""


def application(environ, start_response):
    if environ.get("PATH_INFO", "") not in ("", "/"):
        body = b"Not Found\n"
        start_response("404 Not Found", [("Content-Type", "text/plain"),
                                         ("Content-Length", str(len(body)))])
        return [body]

    prefix = environ.get("SCRIPT_NAME", "")
    items = "\n".join(
        '<li><a href="{href}">{name}</a>: {what}</li>'.format(
            href=html.escape(prefix + href), name=html.escape(name), what=html.escape(what))
        for href, name, what in EXAMPLES
    )
    body = PAGE.format(
        items=items,
        host=html.escape(environ.get("HTTP_HOST", "127.0.0.1:8000")),
        prefix=html.escape(prefix),
        server=html.escape(environ.get("SERVER_SOFTWARE", "Apache")),
        python=sys.version.split()[0],
        group=html.escape(environ.get("mod_wsgi.process_group", "") or "(embedded)"),
        app_group=html.escape(environ.get("mod_wsgi.application_group", "") or "%{GLOBAL}"),
    ).encode("utf-8")
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]
