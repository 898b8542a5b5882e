""""Why isn't it running?": the reasons a waiting calculation has not started."""

from __future__ import annotations

from django.db.models import Q

from calculations.models import Calculation
from calculations.states import ACTIVE, State


def why_waiting(calc: Calculation) -> dict:
    """``{"waiting": bool, "reasons": [sentences], "ahead": int}`` for ``calc``."""
    if calc.state == State.PENDING_APPROVAL:
        return {"waiting": True, "ahead": None, "reasons": ["Waiting for a moderator or admin to approve it."]}
    if calc.state != State.QUEUED:
        return {"waiting": False, "ahead": None, "reasons": [_not_waiting(calc)]}
    cluster = calc.cluster
    reasons = []
    if not cluster.enabled:
        reasons.append(f"Cluster {cluster.name} is disabled: it takes no new work until an admin enables it.")
    if not cluster.is_online:
        seen = f"last heard from {cluster.last_heartbeat_at:%Y-%m-%d %H:%M:%S} UTC" if cluster.last_heartbeat_at \
            else "never heard from"
        reasons.append(f"Cluster {cluster.name} is offline ({seen}): its agent is not running.")
    active = Calculation.objects.filter(cluster=cluster, state__in=ACTIVE).count()
    if active >= cluster.max_concurrent:
        reasons.append(f"Cluster {cluster.name} is at its cap: {active} of {cluster.max_concurrent} running.")
    ahead = Calculation.objects.filter(cluster=cluster, state=State.QUEUED).filter(
        Q(priority__gt=calc.priority)
        | Q(priority=calc.priority, created_at__lt=calc.created_at)
        | Q(priority=calc.priority, created_at=calc.created_at, pk__lt=calc.pk)).count()
    if ahead:
        reasons.append(f"{ahead} calculation{'s' if ahead != 1 else ''} ahead of it in the queue of {cluster.name}.")
    if not reasons:
        reasons.append("Nothing holds it back: the agent will take it at its next poll.")
    return {"waiting": True, "ahead": ahead, "reasons": reasons}


def _not_waiting(calc: Calculation) -> str:
    if calc.state in ACTIVE:
        return f"It is {calc.get_state_display().lower()} (step {calc.current_step + 1} of {calc.step_count})."
    return f"It is {calc.get_state_display().lower()}."
