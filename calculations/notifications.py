"""Who hears about a calculation event, and what they read.

The owner hears by their level (INFO: every state change and the report; ERROR: failures,
losses and rejections; OFF: nothing); admins hear by their own level too.
"""

from __future__ import annotations

from accounts.emails import send_templated
from accounts.models import User
from calculations.models import CalculationEvent
from calculations.states import State

ERROR_STATES = {State.FAILED, State.LOST}


def is_error(event: CalculationEvent) -> bool:
    return event.to_state in ERROR_STATES or bool(event.data.get("rejected"))


def is_state_change(event: CalculationEvent) -> bool:
    return event.from_state != event.to_state


def notified_admins() -> list[User]:
    """The admins whose level asks for any mail (read once for a batch of events)."""
    return list(User.objects.admins().filter(notify_level__in=[User.NotifyLevel.INFO, User.NotifyLevel.ERROR]))


def recipients(event: CalculationEvent, admins: list[User] | None = None) -> list[User]:
    """The owner and the admins, each if their notification level asks for this event.
    ``admins``: :func:`notified_admins`, when the caller read them already."""
    if not is_state_change(event):
        return []
    wanted = {User.NotifyLevel.INFO, User.NotifyLevel.ERROR} if is_error(event) else {User.NotifyLevel.INFO}
    people = {u.pk: u for u in (notified_admins() if admins is None else admins) if u.notify_level in wanted}
    owner = event.calculation.owner
    if owner and owner.is_active and owner.notify_level in wanted:
        people[owner.pk] = owner
    return [u for u in people.values() if u.email]


def send_event(event: CalculationEvent, *, admins: list[User] | None = None, connection=None) -> int:
    """Send the event's e-mail to each recipient; returns how many were sent. ``connection``:
    an open mail connection shared by a batch (one login or HTTP session, not one per mail)."""
    calc = event.calculation
    context = {"event": event, "calc": calc, "error": is_error(event),
               "report_ready": event.to_state == State.SUCCEEDED,
               "path": f"/calculations/{calc.pk}/"}
    return sum(send_templated("calculation-event", [user.email], {**context, "user": user}, connection=connection)
               for user in recipients(event, admins))
