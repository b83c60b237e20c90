"""
WSGI config for maximui project.

It exposes the WSGI callable as a module-level variable named ``application``.

For more information on this file, see
https://docs.djangoproject.com/en/5.2/howto/deployment/wsgi/
"""

import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "maximui.settings")

application = get_wsgi_application()

# A server process starts here (gunicorn workers, runserver): its runner sweeps runs left
# pending by a stopped process, now and periodically (prompts_app/runner.py).
from prompts_app import runner  # noqa: E402

runner.start()

# Everything loaded so far (Django, the apps, the URL and template machinery: ~100,000
# objects) lives as long as the process; frozen, the collector stops walking it after every
# few hundred new objects. At 1M runs that walk cost a history page 6-18 ms of CPU
# (bench/bench_history.py); with gunicorn's workers it also keeps the shared pages shared.
gc.freeze()
