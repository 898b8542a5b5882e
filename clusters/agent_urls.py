"""Routes of the agent API (mounted under /api/agent/v1/)."""

from django.urls import path

from clusters import agent_api

urlpatterns = [
    path("heartbeat/", agent_api.HeartbeatView.as_view(), name="agent-heartbeat"),
]
