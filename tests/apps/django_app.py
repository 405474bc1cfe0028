"""A real Django app in one module: form POST, JsonResponse, streaming and file responses."""

import json

from django.conf import settings

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="integration-tests-only-not-secret",
    MIDDLEWARE=["django.middleware.common.CommonMiddleware",
                "django.middleware.csrf.CsrfViewMiddleware"],
    INSTALLED_APPS=[],
    DATABASES={},
    USE_TZ=True,
)

from django.core.wsgi import get_wsgi_application  # noqa: E402 (needs settings)
from django.http import FileResponse, JsonResponse, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402
from django.views.decorators.http import require_GET, require_POST  # noqa: E402

from sample_data import sample_path  # noqa: E402

STREAM_CHUNKS = [f"django chunk {i}\n" for i in range(5)]


@csrf_exempt
@require_POST
def form(request):
    return JsonResponse(request.POST.dict())


@csrf_exempt
@require_POST
def json_echo(request):
    return JsonResponse({"received": json.loads(request.body)})


@require_GET
def stream(request):
    return StreamingHttpResponse(iter(STREAM_CHUNKS), content_type="text/plain")


@require_GET
def download(request):
    return FileResponse(open(sample_path(), "rb"), as_attachment=True, filename="sample.bin",
                        content_type="application/octet-stream")


urlpatterns = [path("form", form), path("json", json_echo), path("stream", stream),
               path("download", download)]

application = get_wsgi_application()
