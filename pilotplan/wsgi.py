import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pilotplan.settings")

application = get_wsgi_application()

# Everything loaded so far (Django, apps, URL and template caches) lives as long as the process;
# moving it out of the cyclic collector's reach keeps full collections short in each worker.
gc.freeze()
