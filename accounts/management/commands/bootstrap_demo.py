"""Create the demo admin on first run and print its credentials (kept in var/)."""

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.models import User


class Command(BaseCommand):
    help = "Create a demo admin (first run only) and print its credentials."

    def handle(self, *args, **options):
        path = settings.VAR_DIR / "demo-admin.txt"
        user = User.objects.filter(username="admin").first()
        if user is None:
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser("admin", "admin@localhost", password)
            path.write_text(password)
            path.chmod(0o600)
        password = path.read_text().strip() if path.exists() else "(set before; unchanged)"
        self.stdout.write(self.style.SUCCESS(f"Demo admin: username 'admin', password '{password}'"))
