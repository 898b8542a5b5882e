"""REST routes of this app (mounted under /api/)."""

from rest_framework.routers import SimpleRouter

from molecules import api

router = SimpleRouter()
router.register("molecules", api.MoleculeViewSet, basename="api-molecule")
router.register("pseudopotentials", api.PseudopotentialViewSet, basename="api-pseudopotential")

urlpatterns = router.urls
