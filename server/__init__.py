"""An asyncio HTTP/1.1 application server that runs as a gunicorn worker class.

    gunicorn -k server.workers.AsyncWorker --threads 8 myproject.wsgi:application
"""

__version__ = "0.1.0"
