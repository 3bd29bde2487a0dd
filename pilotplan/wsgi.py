import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pilotplan.settings")

application = get_wsgi_application()

# Everything loaded so far lives as long as the process: out of the cyclic collector's reach,
# and the collector's thresholds set for requests that build large batches (pilotplan.collector).
from pilotplan.collector import collector_settle  # noqa: E402

collector_settle()
