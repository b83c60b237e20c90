"""Builder drafts: the autosave touches only its status line, one open draft per base, no silent overwrites."""

from __future__ import annotations

import re

import pytest
from django.db import IntegrityError, transaction

from prompts_app.models import Draft
from prompts_app.services import versions as services
from tests.conftest import builder_form_data, builder_url


def tag(html: str, element_id: str) -> str:
    return re.search(rf'<[a-z]+ id="{element_id}"[^>]*>', html).group(0)


def test_the_autosave_has_its_own_target_and_waits_for_the_builders_own_requests(client_for, editor, prompt):
    html = client_for(editor).get(builder_url(prompt)).content.decode()
    status = tag(html, "builder-status")
    assert 'hx-target="this"' in status and 'hx-swap="innerHTML"' in status
    assert 'hx-sync="closest form:queue last"' in status
    assert 'hx-sync="this:queue last"' in tag(html, "builder")
    # The revision travels with the form and comes back inside the status the autosave swaps.
    inner = html[html.index(status) :]
    assert inner.index('name="draft_revision" value="0"') < inner.index("</div>")


def test_a_user_has_at_most_one_open_draft_per_base(editor, prompt, version):
    Draft.objects.create(prompt=prompt, user=editor, base_version=None)
    Draft.objects.create(prompt=prompt, user=editor, base_version=version)
    for base in (None, version):
        with pytest.raises(IntegrityError), transaction.atomic():
            Draft.objects.create(prompt=prompt, user=editor, base_version=base)
    # Drafts that became versions do not count.
    Draft.objects.filter(base_version=None).update(created_version=version)
    Draft.objects.create(prompt=prompt, user=editor, base_version=None)


def test_a_draft_opened_by_a_concurrent_request_is_reused(editor, prompt, monkeypatch):
    other = Draft.objects.create(prompt=prompt, user=editor, form_data={"model_name": "old"}, revision=1)
    real_find = services.find_draft
    calls = []

    def late_find(**kwargs):  # the first look happens before the other request's insert
        calls.append(1)
        return None if len(calls) == 1 else real_find(**kwargs)

    monkeypatch.setattr(services, "find_draft", late_find)
    draft = services.save_draft(
        prompt=prompt, user=editor, base_version=None, form_data={"model_name": "new"}, content=None
    )
    assert draft.pk == other.pk and Draft.objects.get().form_data == {"model_name": "new"}


def test_each_save_bumps_the_revision_and_a_stale_one_is_refused(editor, prompt):
    first = services.save_draft(
        prompt=prompt, user=editor, base_version=None, form_data={"a": "1"}, content=None, revision=0
    )
    assert first.revision == 1
    second = services.save_draft(
        prompt=prompt, user=editor, base_version=None, form_data={"a": "2"}, content=None, revision=1
    )
    assert second.revision == 2
    with pytest.raises(services.DraftConflict):  # a tab still on revision 1
        services.save_draft(
            prompt=prompt, user=editor, base_version=None, form_data={"a": "old"}, content=None, revision=1
        )
    assert Draft.objects.get().form_data == {"a": "2"}


def test_an_autosave_from_a_stale_tab_says_so_and_overwrites_nothing(client_for, editor, prompt):
    client = client_for(editor)
    tab_a = {**builder_form_data(), "draft_revision": "0"}
    client.post(builder_url(prompt), tab_a, HTTP_HX_REQUEST="true")
    client.post(builder_url(prompt), {**tab_a, "m-0-text": "from tab B", "draft_revision": "1"}, HTTP_HX_REQUEST="true")
    response = client.post(
        builder_url(prompt), {**tab_a, "m-0-text": "stale tab A", "draft_revision": "1"}, HTTP_HX_REQUEST="true"
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "This draft changed in another tab; reload" in html and 'role="alert"' in html
    assert f'<a href="{builder_url(prompt)}">Reload</a>' in html
    assert Draft.objects.get().form_data["m-0-text"] == "from tab B"
    # A full render (an action) keeps what the stale tab typed on the page, unsaved.
    html = client.post(
        builder_url(prompt), {**tab_a, "m-0-text": "stale tab A", "draft_revision": "1", "action": "add_message"}
    ).content.decode()
    assert 'id="builder-conflict"' in html and "stale tab A" in html
    assert Draft.objects.get().form_data["m-0-text"] == "from tab B"
    # A revision that is not a number is no revision the page was given (hostile trial: it
    # skipped the check and overwrote the draft).
    for odd in ("garbage", "-1", ""):
        forged = {**tab_a, "m-0-text": "forged", "draft_revision": odd}
        html = client.post(builder_url(prompt), forged, HTTP_HX_REQUEST="true").content.decode()
        assert "This draft changed in another tab; reload" in html and 'value="0"' in html
    assert Draft.objects.get().form_data["m-0-text"] == "from tab B"
