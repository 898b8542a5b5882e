"""ML models and their predictions in the Django admin.

Staff (moderators and admins) see models and start or stop them (``can_use_science``);
only admins add, change and delete them (``can_manage_models``). Runtime state is read-only:
writes go through ``mlmodels.services``. Predictions are an audit trail: read-only for all.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError

from accounts import permissions as perms
from mlmodels import docker, services
from mlmodels.models import MLModel, Prediction

RUNTIME = ["state", "container_id", "address", "started_at", "ready_at", "stopped_at", "last_ping_at",
           "last_ping_ok", "restart_count", "failure_times", "next_restart_at", "alerted_at", "last_error",
           "created_by", "created_at", "updated_at"]


@admin.register(MLModel)
class MLModelAdmin(admin.ModelAdmin):
    list_display = ["name", "image", "version", "state", "last_ping_at", "last_ping_ok", "restart_count"]
    list_filter = ["state"]
    search_fields = ["name", "description", "image"]
    fields = [*services.EDITABLE_FIELDS, *RUNTIME]
    readonly_fields = RUNTIME
    actions = ["start_models", "stop_models"]

    def has_module_permission(self, request):
        return perms.can_use_science(request.user)

    def has_view_permission(self, request, obj=None):
        return perms.can_use_science(request.user)

    def has_add_permission(self, request):
        return perms.can_manage_models(request.user)

    def has_change_permission(self, request, obj=None):
        return perms.can_manage_models(request.user)

    def has_delete_permission(self, request, obj=None):
        return perms.can_manage_models(request.user)

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in services.EDITABLE_FIELDS if name in form.cleaned_data}
        if change:
            services.update_model(actor=request.user, model=obj, **fields)
        else:
            fields.pop("name")
            fields.pop("image")
            saved = services.register_model(actor=request.user, name=obj.name, image=obj.image, **fields)
            obj.pk, obj.created_at = saved.pk, saved.created_at

    def delete_model(self, request, obj):
        try:
            services.delete_model(actor=request.user, model=obj)
        except docker.DockerError as exc:
            self.message_user(request, f"{obj.name} was not deleted: {exc}", messages.ERROR)

    def delete_queryset(self, request, queryset):
        for model in queryset:
            self.delete_model(request, model)

    def _each(self, request, queryset, change, verb: str) -> None:
        done = 0
        for model in queryset:
            try:
                change(actor=request.user, model=model)
                done += 1
            except (docker.DockerError, services.WrongState, ValidationError, PermissionDenied) as exc:
                self.message_user(request, f"{model.name}: {exc}", messages.ERROR)
        if done:
            self.message_user(request, f"{verb} {done} model(s).", messages.SUCCESS)

    @admin.action(description="Start the selected models")
    def start_models(self, request, queryset):
        self._each(request, queryset, services.start_model, "Started")

    @admin.action(description="Stop the selected models")
    def stop_models(self, request, queryset):
        self._each(request, queryset, services.stop_model, "Stopped")

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not perms.can_manage_models(request.user):
            actions.pop("delete_selected", None)
        return actions


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "model_name", "model_version", "user", "status", "http_status", "latency_ms"]
    list_filter = ["status", "model_name"]
    search_fields = ["model_name", "error"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        return Prediction.objects.visible_to(request.user)

    def has_module_permission(self, request):
        return perms.can_use_science(request.user)

    def has_view_permission(self, request, obj=None):
        return perms.can_use_science(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
