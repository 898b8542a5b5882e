"""Calculation routes of the agent API (mounted under /api/agent/v1/)."""

from django.urls import path

from calculations import agent_api

urlpatterns = [
    path("calculations/", agent_api.PendingView.as_view(), name="agent-pending"),
    path("claim/", agent_api.ClaimView.as_view(), name="agent-claim"),
    path("logs/", agent_api.AgentLogsView.as_view(), name="agent-logs"),
    path("reports/", agent_api.ReportsView.as_view(), name="agent-reports"),
    path("calculations/<int:pk>/events/", agent_api.EventsView.as_view(), name="agent-events"),
    path("calculations/<int:pk>/logs/", agent_api.LogsView.as_view(), name="agent-calc-logs"),
    path("calculations/<int:pk>/results/", agent_api.ResultsView.as_view(), name="agent-results"),
    path("calculations/<int:pk>/files/<str:name>", agent_api.FileView.as_view(), name="agent-file"),
]
