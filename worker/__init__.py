"""Diagnosis workers: the pure rules (``worker.diagnosis``) and the Celery app and tasks."""
