"""Every change to users: one function each, one transaction, permission-checked.

Views, the API and the admin parse input and call these; the rules live in
``accounts.permissions`` and are asked here once more, so no entry point can skip them.
"""

from __future__ import annotations

from django.contrib.auth import password_validation
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts import permissions as perms
from accounts.models import User


def _check(allowed: bool, message: str) -> None:
    if not allowed:
        raise PermissionDenied(message)


def _validate_password(password: str, user: User) -> None:
    """Django's password validators, reported against the ``password`` field."""
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from None


def _validate(user: User) -> None:
    """Model validation (unique username and e-mail, valid role); raises ValidationError."""
    user.full_clean(exclude=["password"])


@transaction.atomic
def create_user(*, actor: User, username: str, email: str, password: str, role: str = "user",
                first_name: str = "", last_name: str = "", notify_level: str = "INFO") -> User:
    """Create a user (admins only), validating the password with Django's validators."""
    _check(perms.can_create_users(actor), "Only admins create users.")
    user = User(username=username, email=email, role=role, first_name=first_name,
                last_name=last_name, notify_level=notify_level)
    _validate(user)
    _validate_password(password, user)
    user.set_password(password)
    user.save()
    return user


@transaction.atomic
def update_profile(*, actor: User, target: User, **fields) -> User:
    """Change name, e-mail, notification level and (admins, not on themselves) the role."""
    _check(perms.can_edit_profile(actor, target), "You may only edit your own profile.")
    if "role" in fields and fields["role"] != target.role:
        _check(perms.can_change_role(actor, target), "Only admins change roles, and not their own.")
    for name in ("first_name", "last_name", "email", "notify_level", "role"):
        if name in fields:
            setattr(target, name, fields[name])
    _validate(target)
    target.save()
    return target


@transaction.atomic
def set_password(*, actor: User, target: User, password: str) -> User:
    """Set ``target``'s password; a changed password ends all of target's refresh tokens."""
    _check(perms.can_set_password(actor, target), "You may not set this user's password.")
    _validate_password(password, target)
    target.set_password(password)
    target.save(update_fields=["password"])
    revoke_tokens(actor=actor, target=target, check=False)
    if actor.pk != target.pk:
        from accounts.tasks import notify_password_set

        transaction.on_commit(lambda: notify_password_set.delay(target.pk, actor.pk))
    return target


@transaction.atomic
def set_blocked(*, actor: User, target: User, blocked: bool) -> User:
    """Block (or unblock) ``target``: a blocked user loses access at once, tokens included."""
    _check(perms.can_block(actor, target), "You may not block or unblock this user.")
    target.is_active = not blocked
    target.save(update_fields=["is_active"])
    if blocked:
        revoke_tokens(actor=actor, target=target, check=False)
    return target


@transaction.atomic
def delete_user(*, actor: User, target: User) -> None:
    """Delete ``target`` (admins only, never themselves)."""
    _check(perms.can_delete_user(actor, target), "Only admins delete users, and not themselves.")
    target.delete()


def record_login(*, user: User, request) -> None:
    """A successful API sign-in: the same signal as a page sign-in, so ``last_login`` is
    set and django-axes forgets the account's failed attempts."""
    user_logged_in.send(sender=user.__class__, request=request, user=user)


def revoke_tokens(*, actor: User, target: User, check: bool = True) -> int:
    """Blacklist every outstanding refresh token of ``target``; returns how many were live."""
    if check:
        _check(perms.can_revoke_tokens(actor, target), "You may not revoke this user's tokens.")
    live = OutstandingToken.objects.filter(user=target, blacklistedtoken__isnull=True)
    ids = list(live.values_list("id", flat=True))
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token_id=token_id) for token_id in ids], ignore_conflicts=True
    )
    return len(ids)
