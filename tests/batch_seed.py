"""A batch built in code (no Maxim, no worker) for the matrix's tests: cases, columns, cells and runs
with figures chosen by the test."""

from __future__ import annotations

from django.utils import timezone

from prompts_app.models import BatchCell, BatchColumn, BatchComparison, Run, TestCase, TestSet
from tests.conftest import make_version


def seed(
    workspace, prompt, editor, *, cases, failing, test_set=None, versions=None, outputs=None, status="done", running=()
):
    """`failing`: {column number: case numbers that fail}; `running`: (column, case) still being sent."""
    test_set = test_set or TestSet.objects.create(workspace=workspace, name="Tickets", variable_names=["q"])
    if not test_set.cases.exists():
        TestCase.objects.bulk_create(
            TestCase(test_set=test_set, position=n, variables={"q": f"question {n}"}) for n in range(1, cases + 1)
        )
    versions = (
        versions
        or list(prompt.versions.order_by("number")[:2])
        or [
            make_version(prompt, 1),
            make_version(prompt, 2, model="gpt-4o-mini"),
        ]
    )
    batch = BatchComparison.objects.create(
        workspace=workspace,
        test_set=test_set,
        status=status,
        resumed_at=timezone.now(),
        created_by=editor,
        total_cells=cases * len(versions),
    )
    columns = [
        BatchColumn.objects.create(batch=batch, position=n, version=v, label=f"Reply v{v.number}")
        for n, v in enumerate(versions, 1)
    ]
    for case in test_set.cases.all():
        for column in columns:
            n = case.position
            grow = n if column.position == 1 else cases + 1 - n
            text = (outputs or {}).get((column.position, n), f"Answer {n} from column {column.position}")
            sending = (column.position, n) in running
            run = Run.objects.create(
                workspace=workspace,
                prompt=prompt,
                version=column.version,
                batch_comparison=batch,
                status="pending" if sending else "success",
                provider="openai",
                model_name=column.version.model_name,
                output_text=text,
                total_tokens=10 * grow,
                cost_nano=1000 * grow,
                latency_ms=float(grow),
                finished_at=timezone.now(),
            )
            fails = n in failing.get(column.position, set())
            checked = [] if sending else [{"name": "Contains", "passed": not fails, "reason": "checked"}]
            BatchCell.objects.create(
                batch=batch, column=column, case=case, run=run, state="running" if sending else "success",
                passed=None if sending else not fails, check_results=checked,
            )  # fmt: skip
    return batch
