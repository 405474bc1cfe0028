"""gunicorn settings for production with the asyncworker worker class.

    gunicorn -c conf/gunicorn.conf.py myproject.wsgi:application

Every value can be overridden on the command line (``--workers 4``) or, where
noted, by an environment variable, so the same file serves every host. Under
systemd (deploy/app.service) the listening socket comes from deploy/app.socket
and ``bind`` below is not used.
"""

import os

from gunicorn import systemd


def _cpus() -> int:
    """CPUs this process may run on (affinity and cpusets count, unlike os.cpu_count())."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# -- what to run -------------------------------------------------------------------

# One asyncio loop (uvloop) per worker process, its own HTTP/1.1 parser, WSGI apps in threads.
worker_class = "server.workers.AsyncWorker"

# One worker per CPU: a worker's loop keeps one core busy by itself, so more workers than
# cores only add context switches; fewer leave cores idle. WEB_CONCURRENCY overrides it,
# as with gunicorn's default.
workers = int(os.environ.get("WEB_CONCURRENCY", _cpus()))

# WSGI app threads per worker: how many requests of one worker can be *inside the app* at
# once (slow clients and idle keep-alive connections never hold one). 8 suits apps that
# wait on a database or an API; CPU-bound apps gain nothing past 2-4 (the GIL).
threads = int(os.environ.get("GUNICORN_THREADS", 8))

# Used only when no socket is handed over by systemd: loopback, behind nginx.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# Connections the kernel queues while every worker is busy or restarting (a HUP reload,
# a worker past max_requests): they wait instead of being refused.
backlog = 2048

# -- connections ---------------------------------------------------------------------

# Idle seconds a keep-alive connection is kept. Above the idle timeout of what stands in
# front (nginx's upstream keepalive_timeout and AWS ALB's idle timeout are 60 s): the
# proxy then always closes first, and never sends a request on a connection this server
# is closing at that very moment (a 502 for the client).
keepalive = 75

# Open connections per worker; past it the worker stops accepting and new clients wait
# in the backlog. Idle connections cost a few KiB on the loop, so this can be high.
worker_connections = 2000

# -- timeouts ------------------------------------------------------------------------

# Heartbeat: a worker whose loop is blocked this long is killed and replaced. The loop
# never waits for the app (it runs in threads), so this catches a wedged process, not a
# slow request.
timeout = 30

# On TERM (systemctl stop / reload, max_requests): seconds for in-flight requests to
# finish. deploy/app.service's TimeoutStopSec must stay above it.
graceful_timeout = 30

# Recycle a worker after this many requests (jittered so that workers do not restart
# together), bounding the damage of a slow memory leak in the app. 0 turns it off.
max_requests = 20000
max_requests_jitter = 2000

# -- request limits (gunicorn's defaults, written out: 414 / 431 past them) ----------

limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190

# -- behind a proxy ------------------------------------------------------------------

# Peers whose X-Forwarded-Proto is believed (and, as set in raw_env below, X-Forwarded-For
# and -Host/-Port, which deploy/nginx-app.conf overwrites): nginx on this host. Add
# the load balancer's subnet ("127.0.0.1,::1,10.0.0.0/16") when it talks to gunicorn
# directly. Never "*" on a port the internet can reach: anyone could then claim any
# address. A unix socket peer is always trusted.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# What a trusted proxy sends to mark an https request (gunicorn's default, written out).
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

# A TCP load balancer (HAProxy send-proxy, AWS NLB) announces the client with the PROXY
# protocol instead: set "v1", "v2" or "auto" and list it in proxy_allow_ips.
proxy_protocol = "off"
proxy_allow_ips = "127.0.0.1,::1"

# -- logs ------------------------------------------------------------------------------

# To stderr/stdout: journald stores them (journalctl -u app).
accesslog = "-"
errorlog = "-"
loglevel = "info"

# %(h)s is the client as resolved above (the forwarded one behind a trusted proxy);
# %(M)s is the duration in milliseconds, %(b)s the body bytes sent.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(f)s" "%(a)s"'

# -- this worker's own settings (environment variables, see README) -------------------

raw_env = [
    "ASYNCWORKER_HEADER_TIMEOUT=10",  # a whole request head within 10 s (slowloris), else 408
    "ASYNCWORKER_BODY_TIMEOUT=30",  # a stalled upload is dropped after 30 idle seconds
    "ASYNCWORKER_MAX_BODY_SIZE=0",  # nginx's client_max_body_size enforces the cap in front
    # Behind deploy/nginx-app.conf, which sets these headers itself (whatever the client sent):
    "ASYNCWORKER_PROXY_HEADERS=x-forwarded",  # the client address from X-Forwarded-For (default: off)
    "ASYNCWORKER_FORWARDED_HOST=1",  # the host from X-Forwarded-Host/-Port (default: off)
]

# -- process ---------------------------------------------------------------------------

proc_name = "app"

# The heartbeat file is touched every second: keep it in memory.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# gunicorn's control socket (gunicornc), in the unit's RuntimeDirectory when run by systemd.
if os.environ.get("RUNTIME_DIRECTORY"):
    control_socket = os.path.join(os.environ["RUNTIME_DIRECTORY"].split(":")[0], "gunicorn.ctl")


def when_ready(server):
    """After a USR2 binary upgrade, tell systemd that the new master is the main process.

    The new master is a child of the old one; without this, systemd would take the old
    master's exit for the service's and stop everything. Needs NotifyAccess=all.
    """
    if server.master_pid:  # set only in a master started by USR2
        systemd.sd_notify(f"MAINPID={os.getpid()}\nREADY=1\nSTATUS=upgraded", server.log)

