"""Minimal Django settings for the tandem example: no database needed."""
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "tandem-example-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.staticfiles"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "mysite.urls"
TEMPLATES = []
DATABASES = {}
USE_TZ = True
# The edge serves these; Django only builds their URLs.
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "static"
