"""The Django app of django_app.py (same settings and views) served through Django's ASGI handler."""

from django.core.asgi import get_asgi_application

import django_app  # noqa: F401 (configures the settings and holds the URLconf)

application = get_asgi_application()
