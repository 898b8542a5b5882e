"""The Users pages: a list for moderators and admins, a page per user, one's own profile.

Every button and form field shown follows ``accounts.permissions``; every write goes
through ``accounts.services``, which asks the same predicates again.
"""

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts import permissions as perms
from accounts import services
from accounts.forms import ProfileForm, UserCreationForm
from accounts.models import User
from siestaflow.forms import run_service

USERS_PER_PAGE = 50


@login_required
def user_list(request):
    if not perms.can_view_users(request.user):
        return redirect("user-detail", pk=request.user.pk)
    page = Paginator(User.objects.order_by("username", "pk"), USERS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "accounts/user_list.html", {
        "users": page, "page": page, "can_create": perms.can_create_users(request.user)})


@perms.require(perms.can_create_users)
def user_create(request):
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        user = _apply(form, lambda: services.create_user(
            actor=request.user, username=data["username"], email=data["email"],
            password=data["password1"], role=data["role"], first_name=data["first_name"],
            last_name=data["last_name"]))
        if user:
            messages.success(request, f"User {user.username} created.")
            return redirect("user-detail", pk=user.pk)
    return render(request, "accounts/user_form.html", {"form": form}, status=400 if request.method == "POST" else 200)


def _render_detail(request, target, *, profile=None, password=None, status=200):
    actor = request.user
    can_edit = perms.can_edit_profile(actor, target)
    if can_edit and profile is None:
        profile = ProfileForm(instance=target, can_change_role=perms.can_change_role(actor, target))
    if password is None:
        password = _password_form(actor, target, None)
    return render(request, "accounts/user_detail.html", {
        "target": target, "profile_form": profile if can_edit else None, "password_form": password,
        "can_block": perms.can_block(actor, target), "can_delete": perms.can_delete_user(actor, target),
        "can_revoke": perms.is_admin(actor),
    }, status=status)


@login_required
def user_detail(request, pk):
    """A user's page; POST saves the profile form (own profile, or any for admins)."""
    target = get_object_or_404(User.objects.visible_to(request.user), pk=pk)
    if request.method != "POST":
        return _render_detail(request, target)
    if not perms.can_edit_profile(request.user, target):
        raise PermissionDenied
    form = ProfileForm(request.POST, instance=User.objects.get(pk=pk),
                       can_change_role=perms.can_change_role(request.user, target))
    if form.is_valid() and _apply(form, lambda: services.update_profile(
            actor=request.user, target=target, **form.cleaned_data)):
        messages.success(request, "Profile saved.")
        return redirect("user-detail", pk=pk)
    return _render_detail(request, target, profile=form, status=400)


@require_POST
@login_required
def user_password(request, pk):
    """Set a password: one's own (with the current one), or another's by role."""
    target = get_object_or_404(User.objects.visible_to(request.user), pk=pk)
    form = _password_form(request.user, target, request.POST)
    if form is None:
        raise PermissionDenied
    if form.is_valid() and _apply(form, lambda: services.set_password(
            actor=request.user, target=target, password=form.cleaned_data["new_password1"])):
        if target.pk == request.user.pk:
            update_session_auth_hash(request, User.objects.get(pk=target.pk))
        messages.success(request, "Password changed.")
        return redirect("user-detail", pk=pk)
    return _render_detail(request, target, password=form, status=400)


@require_POST
@login_required
def user_action(request, pk, action):
    target = get_object_or_404(User.objects.visible_to(request.user), pk=pk)
    actions = {
        "block": lambda: services.set_blocked(actor=request.user, target=target, blocked=True),
        "unblock": lambda: services.set_blocked(actor=request.user, target=target, blocked=False),
        "delete": lambda: services.delete_user(actor=request.user, target=target),
        "revoke-tokens": lambda: services.revoke_tokens(actor=request.user, target=target),
    }
    if action not in actions:
        raise PermissionDenied
    actions[action]()  # PermissionDenied becomes a 403 page
    messages.success(request, f"{target.username}: {action.replace('-', ' ')} done.")
    return redirect("user-list" if action == "delete" else "user-detail", **({} if action == "delete" else {"pk": pk}))


def _password_form(actor, target, data):
    if not perms.can_set_password(actor, target):
        return None
    form_class = PasswordChangeForm if actor.pk == target.pk else SetPasswordForm
    return form_class(target, data)


def _apply(form, write):
    """Run a service call; its validation errors land on the form's fields (a password's on
    the form's new password)."""
    password = "new_password1" if "new_password1" in form.fields else "password2"
    return run_service(form, write, {"password": password})
