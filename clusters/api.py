"""REST endpoints for clusters, their resource graphs and their API keys.

Everyone signed in lists and views clusters and their graphs; only admins add, change,
enable, disable and delete them, and see and manage their keys (``can_manage_clusters``).
"""

from datetime import timedelta

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.permissions import Allow, can_manage_clusters, can_use_science
from clusters import services
from clusters.filters import ClusterFilter
from clusters.models import ApiKey, Cluster
from clusters.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    ClusterSerializer,
    ResourceQuerySerializer,
    ResourceSeriesSerializer,
)

WINDOWS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1),
           "month": timedelta(days=30)}
READ_ACTIONS = {"list", "retrieve", "resources"}


class ClusterViewSet(viewsets.ModelViewSet):
    """Clusters: everyone signed in reads them and their graphs; admins change them."""

    queryset = Cluster.objects.order_by("name")
    serializer_class = ClusterSerializer
    filterset_class = ClusterFilter

    def get_permissions(self):
        predicate = can_use_science if self.action in READ_ACTIONS else can_manage_clusters
        return [Allow(predicate)()]

    def perform_create(self, serializer):
        serializer.instance = services.create_cluster(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.update_cluster(
            actor=self.request.user, cluster=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.delete_cluster(actor=self.request.user, cluster=instance)

    @extend_schema(request=None, responses={200: ClusterSerializer})
    @action(detail=True, methods=["post"])
    def enable(self, request, pk=None):
        cluster = services.set_enabled(actor=request.user, cluster=self.get_object(), enabled=True)
        return Response(ClusterSerializer(cluster).data)

    @extend_schema(request=None, responses={200: ClusterSerializer})
    @action(detail=True, methods=["post"])
    def disable(self, request, pk=None):
        cluster = services.set_enabled(actor=request.user, cluster=self.get_object(), enabled=False)
        return Response(ClusterSerializer(cluster).data)

    @extend_schema(parameters=[ResourceQuerySerializer], responses={200: ResourceSeriesSerializer})
    @action(detail=True, methods=["get"], filterset_class=None)
    def resources(self, request, pk=None):
        """The cluster's CPU, memory, disk and load means over a window, at most
        ``max_points`` points (default: the last hour)."""
        query = ResourceQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        end = params.get("end") or timezone.now()
        start = params.get("start") or end - WINDOWS[params.get("window", "hour")]
        series = services.resource_series(cluster=self.get_object(), start=start, end=end,
                                          max_points=params["max_points"])
        return Response(ResourceSeriesSerializer(series).data)


_CLUSTER_PK = OpenApiParameter("cluster_pk", OpenApiTypes.INT, OpenApiParameter.PATH,
                               description="The cluster's id.")


@extend_schema_view(
    list=extend_schema(parameters=[_CLUSTER_PK]),
    create=extend_schema(parameters=[_CLUSTER_PK], request=ApiKeyCreateSerializer,
                         responses={201: ApiKeyCreatedSerializer}),
    revoke=extend_schema(parameters=[_CLUSTER_PK], request=None, responses={200: ApiKeySerializer}),
    rotate=extend_schema(parameters=[_CLUSTER_PK], request=None, responses={201: ApiKeyCreatedSerializer}),
)
class ApiKeyViewSet(mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    """A cluster's API keys (admins only). The key itself is answered once, on create or
    rotate; lists show only its public prefix."""

    serializer_class = ApiKeySerializer
    permission_classes = [Allow(can_manage_clusters)]
    filterset_class = None

    def get_cluster(self) -> Cluster:
        """The cluster of the URL, or 404 (also for an id past the database's range)."""
        if not hasattr(self, "_cluster"):
            self._cluster = get_object_or_404(Cluster, pk=self.kwargs["cluster_pk"])
        return self._cluster

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI schema, without a cluster
            return ApiKey.objects.none()
        # Through the cluster (404 when unknown, so never an empty list): a foreign-key lookup
        # with an out-of-range id would reach the database and fail there.
        return (ApiKey.objects.filter(cluster=self.get_cluster())
                .select_related("created_by").order_by("-created_at", "-pk"))

    def create(self, request, *args, **kwargs):
        form = ApiKeyCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        key, plaintext = services.create_key(actor=request.user, cluster=self.get_cluster(),
                                             name=form.validated_data["name"])
        return _created(key, plaintext)

    @action(detail=True, methods=["post"])
    def revoke(self, request, cluster_pk=None, pk=None):
        key = services.revoke_key(actor=request.user, key=self.get_object())
        return Response(ApiKeySerializer(key).data)

    @action(detail=True, methods=["post"])
    def rotate(self, request, cluster_pk=None, pk=None):
        key, plaintext = services.rotate_key(actor=request.user, key=self.get_object())
        return _created(key, plaintext)


def _created(key: ApiKey, plaintext: str) -> Response:
    data = ApiKeyCreatedSerializer(key).data
    data["key"] = plaintext
    return Response(data, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})
