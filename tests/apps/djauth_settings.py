# Django settings for the WSGIAuthUserScript test with Django's own
# handler (django.contrib.auth.handlers.modwsgi): tests/auth.rs.
import os

SECRET_KEY = 'mod-wsgi-rs-test-not-secret'
DEBUG = False
ALLOWED_HOSTS = ['127.0.0.1', 'localhost']
INSTALLED_APPS = ['django.contrib.contenttypes', 'django.contrib.auth']
DATABASES = {'default': {
    'ENGINE': 'django.db.backends.sqlite3',
    'NAME': os.path.join(os.path.dirname(os.path.abspath(__file__)), 'djauth.sqlite3'),
}}
# Fast hashing: the test is about the flow, not the hash.
PASSWORD_HASHERS = ['django.contrib.auth.hashers.MD5PasswordHasher']
USE_TZ = True
