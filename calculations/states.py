"""The states of a calculation and the transitions between them. Pure Python.

::

    pending_approval ──approve──▶ queued ──claim──▶ claimed ──▶ running ◀─────────────┐
          │ reject                  │                  │           │  (next chain step) │
          ▼                         ▼                  ▼           ▼                    │
      cancelled ◀── cancel ── (any active state)     lost ◀── validating ──▶ extracting ─┤
                                                       │                       │        │
                                         requeue ──────┘                       ▼        │
                                         (queued)                          analysing ───┘
                                                                               │
                                                        succeeded ◀────────────┘
    failed ──resume──▶ queued (a new attempt from the failed step)

``services.transition`` is the only code that changes a calculation's state.
"""

from django.db import models


class State(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", "Pending approval"  # waits for a moderator
    QUEUED = "queued", "Queued"  # may be claimed by its cluster's agent
    CLAIMED = "claimed", "Claimed"  # an agent took it and holds a lease
    RUNNING = "running", "Running"  # the engine runs a step
    VALIDATING = "validating", "Validating"  # the agent checks convergence and completion
    EXTRACTING = "extracting", "Extracting"  # the agent extracts results from the outputs
    ANALYSING = "analysing", "Analysing"  # the selected analyses run on extracted data
    SUCCEEDED = "succeeded", "Succeeded"  # every step valid, results and analyses stored
    FAILED = "failed", "Failed"  # a step was invalid or the run broke; resumable
    CANCELLED = "cancelled", "Cancelled"  # cancelled by a user, or rejected at approval
    LOST = "lost", "Lost"  # its agent went silent past the lease; requeued or failed


S = State

#: Where each state may go next.
TRANSITIONS: dict[State, frozenset[State]] = {
    S.PENDING_APPROVAL: frozenset({S.QUEUED, S.CANCELLED}),
    S.QUEUED: frozenset({S.CLAIMED, S.CANCELLED, S.PENDING_APPROVAL}),
    S.CLAIMED: frozenset({S.RUNNING, S.FAILED, S.CANCELLED, S.LOST}),
    S.RUNNING: frozenset({S.VALIDATING, S.FAILED, S.CANCELLED, S.LOST}),
    S.VALIDATING: frozenset({S.EXTRACTING, S.FAILED, S.CANCELLED, S.LOST}),
    S.EXTRACTING: frozenset({S.RUNNING, S.ANALYSING, S.SUCCEEDED, S.FAILED, S.CANCELLED, S.LOST}),
    S.ANALYSING: frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLED, S.LOST}),
    S.LOST: frozenset({S.QUEUED, S.FAILED}),
    S.FAILED: frozenset({S.QUEUED}),
    S.SUCCEEDED: frozenset(),
    S.CANCELLED: frozenset(),
}

#: An agent is working on it (it holds a lease).
ACTIVE = frozenset({S.CLAIMED, S.RUNNING, S.VALIDATING, S.EXTRACTING, S.ANALYSING})
#: Waiting to run.
WAITING = frozenset({S.PENDING_APPROVAL, S.QUEUED})
#: Nothing more will happen unless a user resumes it.
TERMINAL = frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLED})
#: The states an agent may report through the events endpoint.
AGENT_REPORTABLE = frozenset({S.RUNNING, S.VALIDATING, S.EXTRACTING, S.ANALYSING, S.SUCCEEDED, S.FAILED,
                              S.CANCELLED})
#: The user's configuration may still be edited.
EDITABLE = frozenset({S.PENDING_APPROVAL, S.QUEUED})


def can_transition(source: State | str, target: State | str) -> bool:
    """Whether ``source → target`` is in the table."""
    return State(target) in TRANSITIONS[State(source)]


def why_not(source: State | str, target: State | str) -> str:
    """A sentence saying why ``source → target`` is refused ("" when allowed)."""
    if can_transition(source, target):
        return ""
    allowed = ", ".join(sorted(TRANSITIONS[State(source)])) or "nothing (it is final)"
    return f"A calculation cannot go from {source} to {target}; from {source} it may go to: {allowed}."
