# The WSGI wrapper for hello.py, as the Flask guides write it: put the
# application's directory first on sys.path, then import the Flask object
# under the name mod_wsgi looks for, "application".
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hello import app as application  # noqa: E402
