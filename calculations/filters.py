"""One FilterSet per list, shared by the list pages and the API."""

import django_filters
from django.db.models import Q

from calculations.models import Calculation, LogLine
from calculations.states import State
from clusters.models import Cluster
from molecules.models import Molecule
from siestaflow.forms import QuickSelect


class CalculationFilter(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=State.choices)
    # Choices that grow with the database: their names only, written quickly on the pages
    cluster = django_filters.ModelChoiceFilter(queryset=Cluster.objects.only("id", "name"), widget=QuickSelect)
    molecule = django_filters.ModelChoiceFilter(queryset=Molecule.objects.only("id", "name"), widget=QuickSelect)
    owner = django_filters.CharFilter(field_name="owner__username")
    engine = django_filters.CharFilter()
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    search = django_filters.CharFilter(method="filter_search", label="Search")

    class Meta:
        model = Calculation
        fields = ["state", "cluster", "molecule", "owner", "engine", "approval"]

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))


class LogLineFilter(django_filters.FilterSet):
    after = django_filters.NumberFilter(field_name="id", lookup_expr="gt", label="Lines after this id")
    before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    level = django_filters.MultipleChoiceFilter(choices=LogLine.Level.choices, label="Level")
    cluster = django_filters.ModelChoiceFilter(queryset=Cluster.objects.only("id", "name"), widget=QuickSelect)

    class Meta:
        model = LogLine
        fields = ["cluster", "calculation", "level", "attempt"]
