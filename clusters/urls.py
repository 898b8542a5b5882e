"""Page routes of this app."""

from django.urls import path

from siestaflow.views import section_placeholder

urlpatterns = [
    path("clusters/", section_placeholder(
        "Clusters", "Clusters, their agents, resources and API keys."), name="clusters"),
]
