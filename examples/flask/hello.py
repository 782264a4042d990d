"""A small Flask application, as the Flask deployment guides write one.

Served by Apache through hello.wsgi; `python hello.py` still runs Flask's
development server, because app.run() is guarded by __main__ (without the
guard, mod_wsgi would start a second server inside Apache).
"""
import sys

from flask import Flask, render_template, request

app = Flask(__name__)


@app.route("/")
def hello():
    return "Hello, I love Flask!"


@app.route("/greet/<name>")
def greet(name):
    # Rendered by Jinja2 from templates/greet.html; the value is escaped.
    return render_template("greet.html", name=name, python=sys.version.split()[0])


@app.route("/echo", methods=["POST"])
def echo():
    # Reads the whole request body through wsgi.input.
    body = request.get_data()
    return {
        "length": len(body),
        "content_type": request.content_type,
        "body": body.decode("utf-8", "replace"),
        "form": request.form.to_dict(),
    }


@app.route("/print")
def printed():
    # With WSGIRestrictStdout Off, print() goes to Apache's error log.
    print("hello from print() in the Flask example")
    return "printed a line to the error log"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=5000)
