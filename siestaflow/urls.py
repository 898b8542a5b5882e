from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from siestaflow import views

admin.site.site_header = "siestaflow administration"
admin.site.site_title = "siestaflow admin"

# Resolved in order: the API first (the agents' routes, then the users'), so that the hot
# routes are not tried against every page pattern before their own.
urlpatterns = [
    path("api/agent/v1/", include("clusters.agent_urls")),
    path("api/agent/v1/", include("calculations.agent_urls")),
    path("api/", include("accounts.api_urls")),
    path("api/", include("molecules.api_urls")),
    path("api/", include("clusters.api_urls")),
    path("api/", include("calculations.api_urls")),
    path("api/", include("mlmodels.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", views.dashboard, name="dashboard"),
    path("", include("accounts.urls")),
    path("", include("calculations.urls")),
    path("", include("molecules.urls")),
    path("", include("clusters.urls")),
    path("", include("mlmodels.urls")),
    path("admin/", admin.site.urls),
]
