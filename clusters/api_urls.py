"""REST routes of this app (mounted under /api/)."""

from rest_framework.routers import SimpleRouter

from clusters import api

router = SimpleRouter()
router.register("clusters", api.ClusterViewSet, basename="api-cluster")
router.register(r"clusters/(?P<cluster_pk>\d+)/keys", api.ApiKeyViewSet, basename="api-cluster-key")

urlpatterns = [*router.urls]
