"""Users of siestaflow, with one role each.

The role is the single source of truth for access: ``is_staff`` and ``is_superuser`` are
derived from it (moderators and admins may sign in to the Django admin; admins hold every
Django permission), so no combination of flags can disagree with the role. "Blocked" is
Django's ``is_active`` false: sessions, logins, access and refresh tokens all stop at once.
"""

from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models
from django.db.models import Q


class UserQuerySet(models.QuerySet):
    def visible_to(self, user) -> "UserQuerySet":
        """Moderators and admins see every user; anyone else only themselves."""
        from accounts.permissions import can_view_users

        return self if can_view_users(user) else self.filter(pk=user.pk)

    def admins(self) -> "UserQuerySet":
        """Active admins (who receive every calculation's notifications)."""
        return self.filter(role=User.Role.ADMIN, is_active=True)


class UserManager(DjangoUserManager.from_queryset(UserQuerySet)):
    """``createsuperuser`` makes an admin (the flags follow from the role)."""

    def create_user(self, username, email=None, password=None, **extra_fields):
        extra_fields.pop("is_staff", None)
        extra_fields.pop("is_superuser", None)
        return self._create_user(username, email, password, **extra_fields)

    def create_superuser(self, username, email=None, password=None, **extra_fields):
        extra_fields.pop("is_staff", None)
        extra_fields.pop("is_superuser", None)
        extra_fields["role"] = User.Role.ADMIN
        return self._create_user(username, email, password, **extra_fields)


class User(AbstractUser):
    """A person using siestaflow."""

    class Role(models.TextChoices):
        USER = "user", "User"  # works with calculations, analyses, molecules, models
        MODERATOR = "moderator", "Moderator"  # also approves work and manages users' access
        ADMIN = "admin", "Admin"  # everything

    class NotifyLevel(models.TextChoices):
        INFO = "INFO", "Every state change and report"
        ERROR = "ERROR", "Failures only"
        OFF = "OFF", "No e-mail"

    email = models.EmailField("e-mail address", unique=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.USER, db_index=True)
    notify_level = models.CharField(
        "e-mail notifications", max_length=8, choices=NotifyLevel.choices, default=NotifyLevel.INFO
    )

    objects = UserManager()

    REQUIRED_FIELDS = ["email"]

    class Meta:
        ordering = ["username"]
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=["user", "moderator", "admin"]), name="user_role_valid"
            ),
            models.CheckConstraint(
                condition=Q(notify_level__in=["INFO", "ERROR", "OFF"]), name="user_notify_level_valid"
            ),
        ]

    # The properties below replace AbstractUser's stored flags (Django drops an inherited
    # field that the subclass redefines), so a flag can never disagree with the role.
    @property
    def is_staff(self) -> bool:
        """Moderators and admins may sign in to the Django admin."""
        return self.role in (self.Role.MODERATOR, self.Role.ADMIN)

    @property
    def is_superuser(self) -> bool:
        """Admins hold every permission."""
        return self.role == self.Role.ADMIN

    @property
    def is_blocked(self) -> bool:
        return not self.is_active
