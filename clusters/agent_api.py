"""The agents' API, version 1 (``docs/agent-api.md``), mounted under ``/api/agent/v1/``.

Every view of it derives from :class:`AgentView`: signed with a cluster's API key only
(a user's JWT or session gets 401), and every 4xx shaped ``{"detail": ..., "errors": {...}}``.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from clusters import services
from clusters.authentication import ClusterKeyAuthentication, IsClusterAgent
from clusters.serializers import AgentErrorSerializer, HeartbeatAnswerSerializer, HeartbeatSerializer
from siestaflow.api import exception_handler


def agent_exception_handler(exc, context):
    """The project's handler, reshaped to the agent API's error body: field messages
    go under ``errors``, and ``detail`` is always a sentence."""
    response = exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and set(data) == {"detail"}:
        body = {"detail": str(data["detail"]), "errors": {}}
    elif isinstance(data, dict):
        body = {"detail": "Invalid request: see errors.", "errors": data}
    else:
        body = {"detail": "Invalid request: see errors.", "errors": {"non_field_errors": data}}
    response.data = body
    return response


class AgentView(APIView):
    """Base of every agent endpoint: cluster key authentication only, agent error bodies."""

    authentication_classes = [ClusterKeyAuthentication]
    permission_classes = [IsClusterAgent]
    parser_classes = [JSONParser]  # bodies are JSON (docs/agent-api.md)

    def get_exception_handler(self):
        return agent_exception_handler

    @property
    def cluster(self):
        """The cluster whose key signed this request."""
        return self.request.user.cluster


AGENT_ERRORS = {
    400: OpenApiResponse(AgentErrorSerializer, description="Malformed body: messages per field."),
    401: OpenApiResponse(AgentErrorSerializer, description="Missing, unknown or revoked API key."),
}


class HeartbeatView(AgentView):
    """``POST heartbeat/``: the agent reports its state and learns what to cancel."""

    @extend_schema(
        operation_id="agent_heartbeat", tags=["agent"], request=HeartbeatSerializer,
        responses={200: HeartbeatAnswerSerializer, **AGENT_ERRORS},
        description="Stores a resource point, marks the cluster online, renews the leases of the "
                    "calculations listed in `running`; answers the ids to cancel and the "
                    "cluster's settings.",
    )
    def post(self, request):
        form = HeartbeatSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        answer = services.record_heartbeat(cluster=self.cluster, payload=form.validated_data)
        return Response(HeartbeatAnswerSerializer(answer).data)
