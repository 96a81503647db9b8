"""The Celery application; tasks live in each app's ``tasks.py``."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paas_site.settings")

app = Celery("slipway")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from paas_site.worker import Heartbeat, MetricsServer  # noqa: E402 (needs the app's settings first)

app.steps["worker"].update({Heartbeat, MetricsServer})
