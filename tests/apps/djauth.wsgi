# A Django project's wsgi.py as "Authenticating against Django's user
# database from Apache" has it: the application, plus the auth functions
# WSGIAuthUserScript / WSGIAuthGroupScript look up in the same file.
import os

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'djauth_settings')

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()

from django.contrib.auth.handlers.modwsgi import check_password, groups_for_user  # noqa: E402,F401
