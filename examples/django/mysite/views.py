from django.http import HttpResponse, JsonResponse
from django.templatetags.static import static
from django.views.decorators.csrf import csrf_exempt


def index(request):
    css = static("site.css")
    return HttpResponse(
        f'<!doctype html><link rel="stylesheet" href="{css}">'
        "<h1>Hello from Django under tandem</h1>"
    )


@csrf_exempt
def echo(request):
    return JsonResponse({"method": request.method, "length": len(request.body)})
