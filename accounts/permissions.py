"""Who may do what: every access rule of siestaflow, once.

Pages (``require`` decorator), the REST API (``Allow`` permission classes) and the Django
admin all ask these predicates; none of them decides on its own. Each predicate takes the
acting user first and answers in plain English in its docstring.

Roles:
- user: views, creates and edits everything about calculations, analyses and molecules;
  uses ML models.
- moderator: also approves calculations, sets other users' passwords, blocks and unblocks
  users; never creates or deletes users, changes roles, or acts on admins.
- admin: everything.
"""

from __future__ import annotations

from functools import cache, wraps
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

if TYPE_CHECKING:
    from accounts.models import User


def _active(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active)


def is_moderator(user: User) -> bool:
    """A moderator or an admin."""
    return _active(user) and user.role in ("moderator", "admin")


def is_admin(user: User) -> bool:
    """An admin."""
    return _active(user) and user.role == "admin"


# --- Science: calculations, analyses, molecules, models --------------------------------


def can_use_science(user: User) -> bool:
    """Any signed-in, unblocked user views, creates and edits calculations, analyses,
    molecules and pseudopotentials, and uses ML models (predict, start, stop)."""
    return _active(user)


def can_approve_calculations(user: User) -> bool:
    """Moderators and admins approve or reject calculations waiting for approval."""
    return is_moderator(user)


# --- Users ----------------------------------------------------------------------------


def can_view_users(user: User) -> bool:
    """Moderators and admins see the list of users; everyone else only their own profile."""
    return is_moderator(user)


def can_create_users(user: User) -> bool:
    """Only admins create users."""
    return is_admin(user)


def can_delete_user(user: User, target: User) -> bool:
    """Only admins delete users, and never themselves (an admin must always remain)."""
    return is_admin(user) and target.pk != user.pk


def can_change_role(user: User, target: User) -> bool:
    """Only admins change roles, and not their own (so the last admin cannot lock all out)."""
    return is_admin(user) and target.pk != user.pk


def can_edit_profile(user: User, target: User) -> bool:
    """Users edit their own name, e-mail and notification level; admins edit anyone's."""
    return _active(user) and (target.pk == user.pk or is_admin(user))


def can_set_password(user: User, target: User) -> bool:
    """Users set their own password; moderators set any non-admin's; admins anyone's."""
    if not _active(user):
        return False
    if target.pk == user.pk or is_admin(user):
        return True
    return is_moderator(user) and target.role != "admin"


def can_block(user: User, target: User) -> bool:
    """Moderators block and unblock non-admins; admins anyone but themselves."""
    if not is_moderator(user) or target.pk == user.pk:
        return False
    return is_admin(user) or target.role != "admin"


def can_revoke_tokens(user: User, target: User) -> bool:
    """Admins revoke all refresh tokens of any user; users revoke their own."""
    return _active(user) and (is_admin(user) or target.pk == user.pk)


# --- Operations -----------------------------------------------------------------------


def can_manage_clusters(user: User) -> bool:
    """Only admins add, change, enable/disable and delete clusters and their API keys."""
    return is_admin(user)


def can_delete_logs(user: User) -> bool:
    """Only admins delete logs."""
    return is_admin(user)


def can_manage_models(user: User) -> bool:
    """Only admins register, edit and delete ML models."""
    return is_admin(user)


# --- Wrappers -------------------------------------------------------------------------


def require(predicate):
    """View decorator: 403 unless ``predicate(request.user)`` holds (login checked first)."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                from django.contrib.auth.views import redirect_to_login

                return redirect_to_login(request.get_full_path())
            if not predicate(request.user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


@cache  # one class per predicate: views ask for it on every request
def Allow(predicate):  # noqa: N802 - reads as a permission class name at the use site
    """A DRF permission class asking ``predicate(request.user)``."""

    class _Allow(BasePermission):
        message = (predicate.__doc__ or "Not allowed.").strip().splitlines()[0]

        def has_permission(self, request, view):
            return predicate(request.user)

    _Allow.__name__ = f"Allow_{predicate.__name__}"
    return _Allow
