"""The Celery application; tasks live in each app's ``tasks.py``."""
import os

from celery import Celery
from celery.signals import beat_init

from paas_site.beat_lock import beat_lock_hold
from paas_site.worker import Heartbeat, MetricsServer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paas_site.settings")

app = Celery("slipway")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Exactly one beat: each waits for the database's beat lock before it schedules anything.
beat_init.connect(beat_lock_hold, weak=False)
# Every worker: a heartbeat file for its liveness probe, and its metrics port (see paas_site.worker).
app.steps["worker"].update({Heartbeat, MetricsServer})
