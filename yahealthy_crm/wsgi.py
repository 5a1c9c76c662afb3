import os

from django.core.wsgi import get_wsgi_application

from yahealthy_crm.bootstrap import local_environment_prepare

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "yahealthy_crm.settings")
local_environment_prepare()
application = get_wsgi_application()
