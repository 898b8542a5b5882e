"""Routes of the agent API (mounted under /api/agent/v1/)."""

urlpatterns = []
