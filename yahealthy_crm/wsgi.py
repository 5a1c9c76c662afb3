import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

from yahealthy_crm.bootstrap import local_environment_prepare
from yahealthy_crm.middleware import UnreadBodyDrain

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yahealthy_crm.settings")
local_environment_prepare()
application = UnreadBodyDrain(get_wsgi_application(), max_bytes=settings.REQUEST_DRAIN_MAX_BYTES)
