"""The Celery app: short tasks only (e-mail, model-container supervision, leases).

Long work never runs here: it runs on the clusters, driven by their agents.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siestaflow.settings")

app = Celery("siestaflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
