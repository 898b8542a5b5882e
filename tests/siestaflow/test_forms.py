"""siestaflow.forms.QuickSelect: Django's Select, its options written without a template each."""

import pytest
from django import forms
from django.test.html import parse_html

from siestaflow.forms import QuickSelect
from tests.factories import ClusterFactory

CHOICES = [("", "---------"), (1, "plain"), (2, 'quotes " and <tags> & ampersands'), (3, "ünïcode")]
GROUPED = [("", "---------"), ("Group <a>", [(4, "four"), (5, "five")]), (6, "six")]


@pytest.mark.parametrize("choices", [CHOICES, GROUPED], ids=["flat", "grouped"])
@pytest.mark.parametrize("value", [None, "", 2, "5", 99])
@pytest.mark.parametrize("attrs", [None, {"id": "id_x", "required": True, "class": "a\"b", "disabled": False}])
def test_it_writes_the_html_django_writes(choices, value, attrs):
    ours = QuickSelect(choices=choices).render("x", value, attrs=attrs)
    django = forms.Select(choices=choices).render("x", value, attrs=attrs)
    assert parse_html(ours) == parse_html(django)
    assert "<tags>" not in ours and "<a>" not in ours  # labels are escaped


def test_the_calculation_filter_lists_clusters_by_name_with_the_chosen_one_selected(page_as, db):
    clusters = [ClusterFactory(name=name) for name in ("zeta", "alpha <b>", "mid")]
    html = page_as("alice").get(f"/calculations/?cluster={clusters[2].pk}").content.decode()
    select = html[html.index('<select name="cluster"'):]
    select = select[:select.index("</select>")]
    assert select.index("alpha &lt;b&gt;") < select.index("mid") < select.index("zeta")
    assert f'<option value="{clusters[2].pk}" selected>mid</option>' in select


def test_labels_marked_safe_are_written_as_they_are_as_django_does():
    from django.utils.safestring import mark_safe

    choices = [(1, mark_safe("<b>bold</b>")), (2, "<b>text</b>")]
    ours = QuickSelect(choices=choices).render("x", 1)
    assert parse_html(ours) == parse_html(forms.Select(choices=choices).render("x", 1))
    assert "<b>bold</b>" in ours and "&lt;b&gt;text&lt;/b&gt;" in ours
