"""One FilterSet per list (the API list and, later, the list page share it)."""

import django_filters

from molecules.models import Molecule, Pseudopotential


class MoleculeFilterSet(django_filters.FilterSet):
    search = django_filters.CharFilter(method="filter_search", label="Name, description or tag contains")
    tag = django_filters.CharFilter(method="filter_tag", label="Has this tag")
    element = django_filters.CharFilter(method="filter_element", label="Has an atom of this element")
    owner = django_filters.CharFilter(field_name="owner__username", label="Owner's username")
    periodic = django_filters.BooleanFilter(field_name="cell", lookup_expr="isnull", exclude=True,
                                            label="Has a cell")

    class Meta:
        model = Molecule
        fields = ["search", "tag", "element", "owner", "periodic"]

    def filter_search(self, queryset, name, value):
        return queryset.search(value)

    def filter_tag(self, queryset, name, value):
        return queryset.tagged(value)

    def filter_element(self, queryset, name, value):
        return queryset.containing(value)


class PseudopotentialFilterSet(django_filters.FilterSet):
    element = django_filters.CharFilter(field_name="element", lookup_expr="iexact")
    flavour = django_filters.CharFilter(field_name="flavour", lookup_expr="iexact")
    format = django_filters.ChoiceFilter(choices=Pseudopotential.Format.choices)
    sha256 = django_filters.CharFilter(field_name="sha256", lookup_expr="iexact")

    class Meta:
        model = Pseudopotential
        fields = ["element", "flavour", "format", "sha256"]
