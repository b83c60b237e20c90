"""Numbers in URLs that only look like numbers: "²" passes str.isdigit() but not int(), and 25
digits pass int() but no database column. Each answers like any other bad id, never with a 500
(found by the hostile-teammate trial, as a viewer)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.batch_seed import seed

ODD = ["²", "٣", "9" * 25, "-1", "1e3", ""]


@pytest.fixture
def batch(workspace, prompt, editor):
    return seed(workspace, prompt, editor, cases=2, failing={2: {1}})


@pytest.mark.parametrize("odd", ODD)
def test_batch_pages_take_odd_numbers_in_stride(client_for, viewer, batch, odd):
    client = client_for(viewer)
    cell = batch.cells.first()
    pages = [
        reverse("batch_detail", args=[batch.pk]),
        reverse("batch_cell", args=[batch.pk, cell.pk]) + "?show=diff&",
        reverse("batch_cell", args=[batch.pk, cell.pk]) + "?show=full&",
    ]
    for page in pages:
        for query in (f"baseline={odd}", f"sort={odd}.cost", f"regressed={odd}"):
            url = f"{page}{'&' if '?' in page else '?'}{query}"
            assert client.get(url).status_code == 200, url
    watch = reverse("batch_watch", args=[batch.pk])
    for query in (f"runs=1,{odd}", f"running={odd}", f"runs={odd}", f"c={odd}q", f"c={odd}"):
        assert client.get(f"{watch}?status=done&{query}").status_code == 200, query


@pytest.mark.parametrize("odd", ODD[:3])
def test_version_pages_take_odd_numbers_in_stride(client_for, viewer, editor, prompt, version, odd):
    diff = reverse("version_diff", args=[prompt.pk])
    assert client_for(viewer).get(f"{diff}?a={odd}&b={version.pk}").status_code in (200, 404)
    build = reverse("version_builder", args=[prompt.pk])
    assert client_for(editor).get(f"{build}?from={odd}").status_code == 404


@pytest.mark.parametrize("odd", ODD[:3])
def test_comparison_pages_take_odd_numbers_in_stride(client_for, viewer, editor, fake_maxim, workspace, odd):
    from prompts_app.services import compare
    from tests.conftest import seed_fake

    versions = seed_fake(fake_maxim, workspace, ["gpt-4o", "gpt-4o-mini"])
    comparison, _ = compare.create_comparison(
        workspace=workspace,
        user=editor,
        columns=[compare.ColumnSpec(v) for v in versions],
        shared_input=True,
        input={"turns": [{"role": "user", "content": "Hi"}], "variables": {"company": "Acme"}},
    )
    client = client_for(viewer)
    assert client.get(reverse("comparison_detail", args=[comparison.pk]), {"batch": odd}).status_code == 200
    watch = reverse("comparison_watch", args=[comparison.pk])
    assert client.get(watch, {"batch": odd, "pending": f"1,{odd}"}).status_code == 200
