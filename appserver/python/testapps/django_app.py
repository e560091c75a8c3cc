"""A one-file Django project (needs python3-django; its tests skip without it)."""
import os
import tempfile

from django.conf import settings

settings.configure(DEBUG=False, SECRET_KEY='tandem-test', ROOT_URLCONF=__name__,
                   ALLOWED_HOSTS=['*'], MIDDLEWARE=[])

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import FileResponse, HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

DATA = b'django file ' * 1000


def index(request):
    return HttpResponse('hello from django %s' % request.GET.get('x', ''))


def upload(request):
    return HttpResponse('got %d bytes' % len(request.body))


def file(request):
    f = tempfile.TemporaryFile()
    f.write(DATA)
    f.seek(0)
    return FileResponse(f)


urlpatterns = [path('', index), path('upload', upload), path('file', file)]
application = get_wsgi_application()
