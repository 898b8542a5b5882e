"""REST routes of calculations (mounted under /api/)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from calculations import api

router = SimpleRouter()
router.register("calculations", api.CalculationViewSet, basename="api-calculation")
router.register("logs", api.LogViewSet, basename="api-log")

urlpatterns = [
    path("analyses/", api.AnalysisCatalogueView.as_view(), name="api-analyses"),
    path("datasets/export/", api.DatasetExportView.as_view(), name="api-dataset-export"),
    *router.urls,
]
