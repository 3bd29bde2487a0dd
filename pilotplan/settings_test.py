"""Settings for the test suite: the environment's settings with development defaults.

Tests run over plain HTTP against a live server (so no secure-only cookies) and without collected
static files; ``DEBUG=true`` selects exactly those defaults. pytest-django still runs every test
with ``settings.DEBUG = False``. Production behaviour is tested by starting subprocesses with a
production environment (tests/pilotplan/test_settings.py, test_check_deploy.py).
"""

import os

os.environ.setdefault("DEBUG", "true")

from pilotplan.settings import *  # noqa: F403

# Every role fixture sets a password; the production hasher costs ~0.3 s each. Logins still go
# through the real authentication backend, only with a cheap hash.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
