"""Clusters and their API keys in the Django admin: admins only (``can_manage_clusters``).

Writes go through ``clusters.services``. A new or rotated key is shown once, in a
message; the key's hash is never shown.
"""

from django.contrib import admin, messages

from accounts import permissions as perms
from clusters import services
from clusters.models import ApiKey, Cluster


class _AdminsOnly:
    """Every admin permission asks ``can_manage_clusters``."""

    def has_module_permission(self, request):
        return perms.can_manage_clusters(request.user)

    def has_view_permission(self, request, obj=None):
        return perms.can_manage_clusters(request.user)

    def has_add_permission(self, request):
        return perms.can_manage_clusters(request.user)

    def has_change_permission(self, request, obj=None):
        return perms.can_manage_clusters(request.user)

    def has_delete_permission(self, request, obj=None):
        return perms.can_manage_clusters(request.user)


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    fields = ["name", "prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False  # keys are added from the API key page, which shows the new key once

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return perms.can_manage_clusters(request.user)


@admin.register(Cluster)
class ClusterAdmin(_AdminsOnly, admin.ModelAdmin):
    list_display = ["name", "enabled", "online", "last_heartbeat_at", "agent_version", "max_concurrent"]
    list_filter = ["enabled", "requires_approval"]
    search_fields = ["name", "description"]
    fields = ["name", "description", "enabled", "max_concurrent", "heartbeat_interval", "requires_approval",
              "agent_version", "engines", "analyses", "last_heartbeat_at", "created_at"]
    readonly_fields = ["agent_version", "engines", "analyses", "last_heartbeat_at", "created_at"]
    inlines = [ApiKeyInline]
    actions = ["enable_clusters", "disable_clusters"]

    @admin.display(boolean=True, description="Online")
    def online(self, cluster: Cluster) -> bool:
        return cluster.is_online

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in services.EDITABLE_FIELDS if name in form.cleaned_data}
        if change:
            services.update_cluster(actor=request.user, cluster=obj, **fields)
        else:
            _become(obj, services.create_cluster(actor=request.user, **fields))

    def delete_model(self, request, obj):
        services.delete_cluster(actor=request.user, cluster=obj)  # the admin checks protected rows first

    def delete_queryset(self, request, queryset):
        for cluster in queryset:
            self.delete_model(request, cluster)

    @admin.action(description="Enable selected clusters")
    def enable_clusters(self, request, queryset):
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable selected clusters (they get no new work)")
    def disable_clusters(self, request, queryset):
        self._set_enabled(request, queryset, False)

    def _set_enabled(self, request, queryset, enabled: bool) -> None:
        for cluster in queryset:
            services.set_enabled(actor=request.user, cluster=cluster, enabled=enabled)
        verb = "enabled" if enabled else "disabled"
        self.message_user(request, f"{queryset.count()} cluster(s) {verb}.", messages.SUCCESS)


@admin.register(ApiKey)
class ApiKeyAdmin(_AdminsOnly, admin.ModelAdmin):
    list_display = ["name", "cluster", "prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["cluster"]
    list_select_related = ["cluster", "created_by"]
    search_fields = ["name", "prefix", "cluster__name"]
    actions = ["revoke_keys", "rotate_keys"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["cluster", "name"]
        return ["cluster", "name", "prefix", "created_by", "created_at", "last_used_at", "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    def has_change_permission(self, request, obj=None):
        return False  # a key never changes: revoke or rotate it (view only)

    def save_model(self, request, obj, form, change):
        key, plaintext = services.create_key(actor=request.user, cluster=form.cleaned_data["cluster"],
                                             name=form.cleaned_data["name"])
        _become(obj, key)
        _show_once(self, request, key, plaintext)

    @admin.action(description="Revoke selected keys")
    def revoke_keys(self, request, queryset):
        for key in queryset:
            services.revoke_key(actor=request.user, key=key)
        self.message_user(request, f"{queryset.count()} key(s) revoked.", messages.SUCCESS)

    @admin.action(description="Rotate selected keys (the new keys are shown once)")
    def rotate_keys(self, request, queryset):
        for key in queryset.filter(revoked_at__isnull=True).select_related("cluster"):
            new, plaintext = services.rotate_key(actor=request.user, key=key)
            _show_once(self, request, new, plaintext)


def _show_once(model_admin, request, key: ApiKey, plaintext: str) -> None:
    model_admin.message_user(
        request, f"API key “{key.name}” for {key.cluster.name}: {plaintext} — copy it now, "
                 f"it is not shown again.", messages.WARNING)


def _become(obj, saved) -> None:
    """Make the admin's unsaved ``obj`` the row a service saved: the admin goes on with
    ``obj`` (log entry, redirect)."""
    for field in type(saved)._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False
