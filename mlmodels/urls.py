"""Page routes of this app."""

from django.urls import path

from siestaflow.views import section_placeholder

urlpatterns = [
    path("models/", section_placeholder(
        "Models", "ML models: state, health, start and stop, predictions."), name="models"),
]
