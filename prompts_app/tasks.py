"""Background tasks (django-tasks; the same API as Django 6's django.tasks). Thin: each calls a
service, and each may run twice after a crash without sending anything twice."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django_tasks import TaskContext, task, task_backends

from prompts_app.services import batch_worker

# After a task failed, its batch goes on in a fresh task this much later: a fault that repeats
# must not spin, and one that does not (a bad answer) must not leave the batch waiting for a restart.
AFTER_A_FAULT = timedelta(seconds=5)


@task(takes_context=True)
def run_batch(context: TaskContext, batch_id: int) -> None:
    """Send a batch's cells for one slice, then hand over to a fresh task on the same backend.
    A slice that failed (its cells settled by the drive) is recorded as a failed task, with the
    error, and the batch goes on AFTER_A_FAULT (on a backend that can wait: not in tests)."""
    backend = context.task_result.backend
    try:
        more = batch_worker.drive(batch_id, slice_seconds=settings.MAXIMUI_BATCH_SLICE_SECONDS)
    except Exception:
        if task_backends[backend].supports_defer and batch_worker.goes_on(batch_id):
            run_batch.using(backend=backend, run_after=timezone.now() + AFTER_A_FAULT).enqueue(batch_id)
        raise
    if more:
        run_batch.using(backend=backend).enqueue(batch_id)
