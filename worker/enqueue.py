"""Queueing a diagnosis from the server without the server touching Celery itself."""

from __future__ import annotations

from collections.abc import Callable

from .celery_app import make_celery

# Give up quickly when the broker is down: the server asks again on the next batch.
_RETRY_POLICY = {"max_retries": 1, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1}


def make_sender(broker_url: str) -> Callable[[str], None]:
    """A function that queues ``losslens.diagnose_run(run_id)`` on ``broker_url``."""
    app = make_celery(broker_url)

    def send_diagnose(run_id: str) -> None:
        app.send_task(
            "losslens.diagnose_run", args=[run_id], retry=True, retry_policy=_RETRY_POLICY
        )

    return send_diagnose
