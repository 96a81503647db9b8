"""The Celery application; tasks live in each app's ``tasks.py``."""
import os

from celery import Celery
from celery.signals import beat_init

from paas_site.beat_lock import beat_lock_hold

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paas_site.settings")

app = Celery("slipway")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Exactly one beat: each waits for the database's beat lock before it schedules anything.
beat_init.connect(beat_lock_hold, weak=False)
