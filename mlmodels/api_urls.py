"""REST routes of ML models (mounted under /api/)."""

from rest_framework.routers import SimpleRouter

from mlmodels import api

router = SimpleRouter()
router.register("models", api.MLModelViewSet, basename="api-model")

urlpatterns = [*router.urls]
