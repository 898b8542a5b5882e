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


def recipients(event: CalculationEvent) -> list[User]:
    """The owner and the admins, each if their notification level asks for this event."""
    if not is_state_change(event):
        return []
    wanted = {User.NotifyLevel.INFO, User.NotifyLevel.ERROR} if is_error(event) else {User.NotifyLevel.INFO}
    people = {u.pk: u for u in User.objects.admins().filter(notify_level__in=wanted)}
    owner = event.calculation.owner
    if owner and owner.is_active and owner.notify_level in wanted:
        people[owner.pk] = owner
    return [u for u in people.values() if u.email]


def send_event(event: CalculationEvent) -> int:
    """Send the event's e-mail to each recipient; returns how many were sent."""
    calc = event.calculation
    context = {"event": event, "calc": calc, "error": is_error(event),
               "report_ready": event.to_state == State.SUCCEEDED,
               "path": f"/calculations/{calc.pk}/"}
    return sum(send_templated("calculation-event", [user.email], {**context, "user": user})
               for user in recipients(event))
