from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from yahealthy_crm.admin_login import admin_login
from yahealthy_crm.health import healthz

admin.site.site_header = "YAHealthy CRM"
admin.site.site_title = "YAHealthy CRM"
admin.site.index_title = "Back office"

# sync first: its webhooks are the busiest paths, and URL resolution tries the patterns in order.
DOMAIN_APPS = ("sync", "profiles", "goals", "activities", "coaching", "compliance")
api_patterns = [
    *(path("", include(f"{app}.urls")) for app in DOMAIN_APPS),
]

urlpatterns = [
    # First: URL resolution tries the patterns in order, and each one that fails costs (an exception
    # for an include such as admin/). No other pattern matches a path under api/crm/.
    path("api/crm/", include((api_patterns, "crm"), namespace="crm")),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("healthz", healthz, name="healthz"),
    # Before admin.site.urls: the admin's own login view, throttled (yahealthy_crm/admin_login.py).
    path("admin/login/", admin_login),
    path("admin/", admin.site.urls),
    path("api/schema", SpectacularAPIView.as_view(permission_classes=[]), name="schema"),
    path(
        "api/docs",
        SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[]),
        name="swagger-ui",
    ),
    path("api/redoc", SpectacularRedocView.as_view(url_name="schema", permission_classes=[]), name="redoc"),
    path("coach/", include("webapp.urls")),
]

handler404 = "yahealthy_crm.errors.json_not_found"
handler500 = "yahealthy_crm.errors.json_server_error"
