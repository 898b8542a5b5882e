"""Calculations in the Django admin: state is read-only; approving, rejecting, cancelling
and resuming go through the services (the only writers of state)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from accounts import permissions as perms
from calculations import services
from calculations.models import Calculation, CalculationEvent, LogLine


class ScienceAdmin(admin.ModelAdmin):
    """Moderators and admins see science records; changes follow the predicates."""

    def has_module_permission(self, request):
        return perms.is_moderator(request.user)

    def has_view_permission(self, request, obj=None):
        return perms.is_moderator(request.user)

    def has_add_permission(self, request):
        return False  # calculations are submitted through pages and API, which validate them

    def has_change_permission(self, request, obj=None):
        return perms.is_moderator(request.user)

    def has_delete_permission(self, request, obj=None):
        return perms.is_admin(request.user)


class EventInline(admin.TabularInline):
    model = CalculationEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "attempt", "from_state", "to_state", "step", "actor", "by_agent", "reason"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Calculation)
class CalculationAdmin(ScienceAdmin):
    list_display = ["id", "name", "owner", "cluster", "engine", "state", "approval", "priority", "created_at"]
    list_filter = ["state", "approval", "engine", "cluster"]
    search_fields = ["name", "description"]
    list_select_related = ["owner", "cluster"]
    readonly_fields = ["state", "approval", "approved_by", "processed", "attempt", "current_step", "start_step",
                       "lease_expires_at", "cancel_requested", "failure_class", "failure_reason", "inputs_hash",
                       "duplicate_of", "owner", "cluster", "engine", "config", "structure", "chain", "analyses",
                       "created_at", "started_at", "finished_at", "progress", "agent_seq", "lost_count",
                       "molecule", "approval_reason"]
    fields = ["name", "description", "priority", *readonly_fields]
    inlines = [EventInline]
    actions = ["approve", "reject", "cancel", "resume"]
    # Ids per deletion. Django's collector empties the ``duplicate_of`` of what refers to the
    # deleted calculations in one statement whatever their number, and PostgreSQL takes at
    # most 65,535 parameters in one (siestaflow.postgresql).
    delete_chunk = 10_000

    def delete_queryset(self, request, queryset):
        """The admin's "delete selected": all or nothing, ``delete_chunk`` calculations at a time."""
        ids = list(queryset.values_list("pk", flat=True))
        with transaction.atomic():
            for start in range(0, len(ids), self.delete_chunk):
                Calculation.objects.filter(pk__in=ids[start:start + self.delete_chunk]).delete()

    def _each(self, request, queryset, change, verb):
        done = 0
        for calc in queryset:
            try:
                change(calc)
                done += 1
            except (PermissionDenied, ValidationError, services.IllegalTransition, services.StaleState) as exc:
                self.message_user(request, f"#{calc.pk}: {exc}", messages.ERROR)
        self.message_user(request, f"{done} calculation(s) {verb}.", messages.SUCCESS)

    @admin.action(description="Approve selected calculations")
    def approve(self, request, queryset):
        self._each(request, queryset, lambda c: services.approve(actor=request.user, calc=c), "approved")

    @admin.action(description="Reject selected calculations")
    def reject(self, request, queryset):
        self._each(request, queryset, lambda c: services.reject(
            actor=request.user, calc=c, reason="rejected in the admin"), "rejected")

    @admin.action(description="Cancel selected calculations")
    def cancel(self, request, queryset):
        self._each(request, queryset, lambda c: services.cancel(actor=request.user, calc=c), "cancelled")

    @admin.action(description="Resume selected failed calculations")
    def resume(self, request, queryset):
        self._each(request, queryset, lambda c: services.resume(actor=request.user, calc=c), "resumed")


@admin.register(LogLine)
class LogLineAdmin(ScienceAdmin):
    list_display = ["id", "time", "cluster", "calculation", "level", "message"]
    list_filter = ["level", "cluster"]
    list_select_related = ["cluster", "calculation"]
    readonly_fields = ["cluster", "calculation", "attempt", "seq", "level", "message", "time", "created_at"]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return perms.can_delete_logs(request.user)
