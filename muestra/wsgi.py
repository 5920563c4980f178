import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

from muestra.core.gc_tuning import settle_startup_objects

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "muestra.settings")
application = get_wsgi_application()

# Import every view and build the API's schemas now rather than on the first request, then freeze those start-up
# objects too, so the garbage collector never walks them again (muestra/core/gc_tuning.py).
_url_patterns = get_resolver().url_patterns
settle_startup_objects()
