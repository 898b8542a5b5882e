"""Page routes of this app."""

from django.urls import path

from siestaflow.views import section_placeholder

urlpatterns = [
    path("molecules/", section_placeholder(
        "Molecules", "Molecules and every calculation made of each."), name="molecules"),
]
