"""The one place that sends e-mail (through Django's backend: file, console, SMTP or
django-anymail's Mailtrap/SendGrid, chosen by settings).

Templates live in ``templates/emails/<name>-subject.txt``, ``-body.txt`` and optionally
``-body.html``; every message is rendered with ``site_url``.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string


def send_templated(name: str, to: list[str], context: dict, *, connection=None) -> int:
    """Render ``emails/<name>-*`` with ``context`` and send it to ``to``; returns 1 if sent.
    ``connection``: an open mail connection to send it on (else one is opened for it)."""
    if not to:
        return 0
    context = {"site_url": settings.SITE_URL, **context}
    subject = " ".join(render_to_string(f"emails/{name}-subject.txt", context).split())
    body = render_to_string(f"emails/{name}-body.txt", context)
    message = EmailMultiAlternatives(subject, body, settings.DEFAULT_FROM_EMAIL, to, connection=connection)
    try:
        message.attach_alternative(render_to_string(f"emails/{name}-body.html", context), "text/html")
    except TemplateDoesNotExist:
        pass
    return message.send()
