# WSGIAuthUserScript / WSGIAuthGroupScript for tests/auth.rs, with the
# function signatures mod_wsgi documents (and Django's handler has).
import hashlib, os

USERS = {'spy': 'secret', 'bond': '007', 'loner': 'alone', 'grpboom': 'pw'}
GROUPS = {'spy': ['secret-agents'], 'bond': [b'double-o', 'staff']}


def check_password(environ, user, password):
    if user == 'boom':
        raise RuntimeError('auth script exploded for %s' % user)
    if user == 'weird':
        return 1
    if user == 'alias':
        return 'renamed-' + password
    if user == 'envdump':
        environ['wsgi.errors'].write('AUTH-ENVIRON %s\n' % ' '.join(
            '%s=%s' % (k, environ[k]) for k in sorted(environ)
            if isinstance(environ[k], (str, int, tuple))))
        environ['wsgi.errors'].write('AUTH-PID %d\n' % os.getpid())
        return True
    if user not in USERS:
        return None
    return USERS[user] == password


def get_realm_hash(environ, user, realm):
    if user not in USERS:
        return None
    value = '%s:%s:%s' % (user, realm, USERS[user])
    digest = hashlib.md5(value.encode()).hexdigest()
    # bytes or str are both accepted.
    return digest if user == 'spy' else digest.encode()


def groups_for_user(environ, user):
    if user == 'grpboom':
        raise ValueError('group lookup exploded')
    return GROUPS.get(user, [])
