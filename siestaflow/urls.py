from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from siestaflow import views

admin.site.site_header = "siestaflow administration"
admin.site.site_title = "siestaflow admin"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("", include("accounts.urls")),
    path("analyses/", views.section_placeholder(
        "Analyses", "Results of analyses across calculations, compared side by side."), name="analyses"),
    path("calculations/", views.section_placeholder(
        "Calculations", "Calculations, their configuration, state, logs and results."), name="calculations"),
    path("molecules/", views.section_placeholder(
        "Molecules", "Molecules and every calculation made of each."), name="molecules"),
    path("models/", views.section_placeholder(
        "Models", "ML models: state, health, start and stop, predictions."), name="models"),
    path("clusters/", views.section_placeholder(
        "Clusters", "Clusters, their agents, resources and API keys."), name="clusters"),
    path("logs/", views.section_placeholder(
        "Logs", "The live feed of the agents' logs."), name="logs"),
    path("admin/", admin.site.urls),
    path("api/agent/v1/", include("clusters.agent_urls")),
    path("api/agent/v1/", include("calculations.agent_urls")),
    path("api/", include("accounts.api_urls")),
    path("api/", include("molecules.api_urls")),
    path("api/", include("clusters.api_urls")),
    path("api/", include("calculations.api_urls")),
    path("api/", include("mlmodels.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
