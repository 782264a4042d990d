"""Flask workload: a view rendering a Jinja2 template with a loop."""
import os

from flask import Flask, render_template

app = Flask(__name__, template_folder=os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates"))

ITEMS = [{"name": "item %d" % i, "price": i * 1.25} for i in range(20)]


@app.route("/flask")
def page():
    return render_template("flask.html", title="Flask benchmark", items=ITEMS)
