"""The Flask application that the "application" file imports.

It reports which virtualenv the "application" file activated, so a request
shows whether activate_this.py ran.
"""
import os
import sys

import flask
from flask import Flask

app = Flask(__name__)


def activated():
    venv = os.environ.get("VIRTUAL_ENV")
    if not venv:
        return None
    # activate_this.py sets VIRTUAL_ENV and sys.prefix, and puts the
    # virtualenv's site-packages at the front of sys.path.
    site = [p for p in sys.path if p.startswith(venv + os.sep) and p.endswith("site-packages")]
    return venv if site and os.path.realpath(sys.prefix) == os.path.realpath(venv) else None


@app.route("/")
def index():
    venv = activated()
    if venv is None:
        return "virtualenv NOT activated (is bin/activate_this.py missing?)\n", 500
    return (
        f"Hello from a virtualenv activated by activate_this.py!\n"
        f"virtualenv: {venv}\n"
        f"sys.prefix: {sys.prefix}\n"
        f"flask: {flask.__file__}\n"
    ), 200, {"Content-Type": "text/plain; charset=utf-8"}


if __name__ == "__main__":
    app.run()
