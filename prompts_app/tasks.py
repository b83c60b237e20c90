"""Background tasks (django-tasks; the same API as Django 6's django.tasks). Thin: each calls a
service, and each may run twice after a crash without sending anything twice."""

from __future__ import annotations

from django.conf import settings
from django_tasks import TaskContext, task

from prompts_app.services import batch_worker


@task(takes_context=True)
def run_batch(context: TaskContext, batch_id: int) -> None:
    """Send a batch's cells for one slice, then hand over to a fresh task on the same backend."""
    more = batch_worker.drive(batch_id, slice_seconds=settings.MAXIMUI_BATCH_SLICE_SECONDS)
    if more:
        run_batch.using(backend=context.task_result.backend).enqueue(batch_id)
