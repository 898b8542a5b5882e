"""Project-level pages: the dashboard and the sections not built yet."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def dashboard(request):
    return render(request, "dashboard.html")


def section_placeholder(title: str, what: str):
    """An honest empty state for a section whose page is not built yet."""

    @login_required
    def view(request):
        return render(request, "section_empty.html", {"title": title, "what": what})

    view.__name__ = f"{title.lower()}_placeholder"
    return view
