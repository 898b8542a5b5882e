"""The one filter of cluster lists, for the list page and the API list alike."""

import django_filters

from clusters.models import Cluster


class ClusterFilter(django_filters.FilterSet):
    """Clusters by name (part of it), enabled, online and approval rule."""

    name = django_filters.CharFilter(lookup_expr="icontains")
    online = django_filters.BooleanFilter(method="filter_online", label="Online")

    class Meta:
        model = Cluster
        fields = ["name", "enabled", "online", "requires_approval"]

    def filter_online(self, queryset, name, value):
        return queryset.online() if value else queryset.offline()
