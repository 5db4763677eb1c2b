"""The Celery application (Redis broker). Tasks live in ``worker.tasks``.

Start a worker with ``losslens worker`` (or ``celery -A worker.celery_app worker``).
"""

from __future__ import annotations

from celery import Celery

from server.settings import Settings


def make_celery(broker_url: str | None = None) -> Celery:
    """A Celery app on ``broker_url`` (default: ``LOSSLENS_BROKER_URL``)."""
    app = Celery("losslens", broker=broker_url or Settings().broker_url or None)
    app.conf.update(
        include=["worker.tasks"],
        task_default_queue="losslens",
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        # A task is acknowledged only once done: a worker killed mid-task gets it redelivered.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 600},
        worker_hijack_root_logger=False,
    )
    return app


# Celery's command line and its task decorators need a module-level app; creating it connects
# to nothing (connections are made on first use).
app = make_celery()
