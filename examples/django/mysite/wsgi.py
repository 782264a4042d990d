"""
WSGI config for mysite: Apache's WSGIScriptAlias points at this file.

It exposes the WSGI callable as a module-level variable named ``application``.
WSGIPythonPath (or WSGIDaemonProcess python-path=) names the directory that
holds the mysite package, so that "mysite.settings" can be imported.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = get_wsgi_application()
