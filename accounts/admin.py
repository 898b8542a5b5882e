"""Users in the Django admin, under the same predicates as pages and API.

Moderators see users, block and unblock non-admins and set their passwords; they see no
add or delete buttons and the role is read-only for them (their own included). Admins do
everything but delete themselves or change their own role.
"""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied

from accounts import permissions as perms
from accounts import services
from accounts.forms import UserChangeForm, UserCreationForm
from accounts.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    list_display = ["username", "email", "role", "is_active", "notify_level", "last_login"]
    list_filter = ["role", "is_active", "notify_level"]
    search_fields = ["username", "email", "first_name", "last_name"]
    ordering = ["username"]
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        ("Profile", {"fields": ["first_name", "last_name", "email", "notify_level"]}),
        ("Access", {"fields": ["role", "is_active"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["username", "email", "role", "password1", "password2"]}),
    ]
    filter_horizontal = []
    actions = ["block_users", "unblock_users", "revoke_refresh_tokens"]

    # --- permissions: the predicates, nothing else -----------------------------------
    def has_module_permission(self, request):
        return perms.can_view_users(request.user)

    def has_view_permission(self, request, obj=None):
        return perms.can_view_users(request.user)

    def has_add_permission(self, request):
        return perms.can_create_users(request.user)

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return perms.is_moderator(request.user)
        return any(check(request.user, obj) for check in
                   (perms.can_edit_profile, perms.can_block, perms.can_set_password))

    def has_delete_permission(self, request, obj=None):
        if obj is None:
            return perms.is_admin(request.user)
        return perms.can_delete_user(request.user, obj)

    def get_readonly_fields(self, request, obj=None):
        readonly = ["last_login", "date_joined"]
        if obj is None:
            return readonly
        if not perms.can_change_role(request.user, obj):
            readonly.append("role")
        if not perms.can_block(request.user, obj):
            readonly.append("is_active")
        if not perms.can_edit_profile(request.user, obj):
            readonly += ["username", "first_name", "last_name", "email", "notify_level"]
        return readonly

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not perms.is_admin(request.user):
            actions.pop("revoke_refresh_tokens", None)
        return actions

    # --- writes go through the services ---------------------------------------------
    def save_model(self, request, obj, form, change):
        if not change:
            obj.save()  # add form: has_add_permission (admins only) already held
            return
        before = User.objects.get(pk=obj.pk)
        if obj.is_active != before.is_active:
            services.set_blocked(actor=request.user, target=before, blocked=not obj.is_active)
        fields = {name: getattr(obj, name) for name in form.changed_data
                  if name in ("first_name", "last_name", "email", "notify_level", "role")}
        if fields:
            services.update_profile(actor=request.user, target=before, **fields)

    def delete_model(self, request, obj):
        services.delete_user(actor=request.user, target=obj)

    def delete_queryset(self, request, queryset):
        for user in queryset:
            services.delete_user(actor=request.user, target=user)

    def user_change_password(self, request, id, form_url=""):
        target = self.get_object(request, id)
        if target is None or not perms.can_set_password(request.user, target):
            raise PermissionDenied
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            # The admin form has saved the password; end the user's API sessions too.
            services.revoke_tokens(actor=request.user, target=target, check=False)
        return response

    @admin.action(description="Block selected users")
    def block_users(self, request, queryset):
        self._each(request, queryset, lambda user: services.set_blocked(
            actor=request.user, target=user, blocked=True), "blocked")

    @admin.action(description="Unblock selected users")
    def unblock_users(self, request, queryset):
        self._each(request, queryset, lambda user: services.set_blocked(
            actor=request.user, target=user, blocked=False), "unblocked")

    @admin.action(description="Revoke all refresh tokens of selected users")
    def revoke_refresh_tokens(self, request, queryset):
        self._each(request, queryset, lambda user: services.revoke_tokens(
            actor=request.user, target=user), "signed out of the API")

    def _each(self, request, queryset, change, verb: str) -> None:
        done, refused = 0, []
        for user in queryset:
            try:
                change(user)
                done += 1
            except PermissionDenied:
                refused.append(user.username)
        self.message_user(request, f"{done} user(s) {verb}.", messages.SUCCESS)
        if refused:
            self.message_user(request, f"Not allowed for: {', '.join(refused)}.", messages.ERROR)
