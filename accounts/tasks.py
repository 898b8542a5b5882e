"""Celery tasks of the accounts app: short, idempotent, taking ids."""

from celery import shared_task

from accounts.emails import send_templated
from accounts.models import User


@shared_task(autoretry_for=(OSError,), retry_backoff=True, retry_jitter=True, max_retries=5)
def notify_password_set(user_id: int, actor_id: int) -> int:
    """Tell a user that someone else set their password (so a misuse does not go unseen)."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    actor = User.objects.filter(pk=actor_id).first()
    if user is None or not user.email:
        return 0
    return send_templated("password-set", [user.email], {"user": user, "actor": actor})
