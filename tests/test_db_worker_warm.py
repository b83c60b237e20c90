"""`manage.py db_worker` loads what the first cell of a batch needs before it takes a task, as the web
server does (runner.start): the first batch after a worker starts does not wait for it."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django_tasks_db.management.commands.db_worker import Command as DBWorker
from genai_prices import data_snapshot

from prompts_app.maxim import outbound

pytestmark = pytest.mark.django_db


def test_the_worker_loads_the_tls_context_and_the_prices_before_its_first_task(monkeypatch):
    outbound.tls_context.cache_clear()
    data_snapshot._bundled_snapshot.cache_clear()
    seen = {}

    def serve(self, *args, **options):  # the task loop: what is loaded by the time it starts
        seen["tls"] = outbound.tls_context.cache_info().currsize
        seen["prices"] = data_snapshot._bundled_snapshot.cache_info().currsize

    monkeypatch.setattr(DBWorker, "handle", serve)
    call_command("db_worker", "--backend", "database")
    assert seen == {"tls": 1, "prices": 1}
