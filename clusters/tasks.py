"""Celery tasks of the clusters app: short and idempotent."""

from celery import shared_task

from clusters import services


@shared_task
def downsample_heartbeats() -> dict[str, int]:
    """Roll raw heartbeats up into minute and hour means and prune the old rows (beat:
    every 5 minutes). Each run does a bounded slice per cluster and is safe to repeat or
    overlap: rollups are upserted, and rows are pruned only once rolled up."""
    return services.downsample_heartbeats()
