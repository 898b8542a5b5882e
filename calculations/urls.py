"""Page routes of this app."""

from django.urls import path

from siestaflow.views import section_placeholder

urlpatterns = [
    path("analyses/", section_placeholder(
        "Analyses", "Results of analyses across calculations, compared side by side."), name="analyses"),
    path("calculations/", section_placeholder(
        "Calculations", "Calculations, their configuration, state, logs and results."), name="calculations"),
    path("logs/", section_placeholder("Logs", "The live feed of the agents' logs."), name="logs"),
]
