"""gunicorn settings for development: one worker that restarts when the code changes.

    gunicorn -c conf/gunicorn.dev.conf.py myproject.wsgi:application

Not for production: tracebacks are sent to clients and every file change restarts the worker.
"""

worker_class = "server.workers.AsyncWorker"

# One worker keeps logs readable and state (module globals, caches) in one place.
workers = 1

# A few app threads are enough to see concurrency bugs without a wall of log lines.
threads = 4

bind = "127.0.0.1:8000"

# Restart the worker when a Python file it imported changes (inotify when installed,
# else polling once a second). reload_extra_files adds templates or configuration files.
reload = True
reload_extra_files = []

# Native and ASGI handlers run on the loop: a breakpoint there stops the heartbeat, and
# the worker would be killed after `timeout` seconds. 0: never.
timeout = 0

# Short keep-alive: browsers hold connections open; a reload should not wait for them.
keepalive = 2
graceful_timeout = 2

accesslog = "-"
errorlog = "-"
loglevel = "debug"

raw_env = [
    "ASYNCWORKER_DEBUG=1",  # tracebacks in 500 responses
    "ASYNCWORKER_LOOP=asyncio",  # the plain asyncio loop: clearer tracebacks than uvloop
]
