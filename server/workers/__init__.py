"""gunicorn worker classes: ``gunicorn -k server.workers.AsyncWorker``."""

from .asyncworker import AsyncWorker

__all__ = ["AsyncWorker"]
