"""Word diffs and the version diff page."""

from __future__ import annotations

import pytest

from prompts_app.diffing import MAX_DIFFED_CHARS, diff_versions, message_text, word_diff
from prompts_app.models import PromptVersion


def test_word_diff_marks_removed_and_added_words():
    assert (
        str(word_diff("You are a helpful agent", "You are a brief agent"))
        == "You are a <del>helpful</del><ins>brief</ins> agent"
    )


def test_word_diff_escapes_before_marking():
    html = str(word_diff("<b>old</b> & same", "<i>new</i> & same"))
    assert "<b>" not in html and "<i>" not in html
    assert html == "<del>&lt;b&gt;old&lt;/b&gt;</del><ins>&lt;i&gt;new&lt;/i&gt;</ins> &amp; same"


def test_word_diff_of_equal_text_has_no_marks():
    assert str(word_diff("same  text\nhere", "same  text\nhere")) == "same  text\nhere"


def test_word_diff_against_nothing_is_all_added():
    assert str(word_diff("", "new words")) == "<ins>new words</ins>"


def test_message_text_shows_parts_images_and_tool_calls():
    text = message_text(
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "hi"},
                {"type": "image_url", "image_url": {"url": "https://i/x.png", "detail": "low"}},
            ],
            "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{}"}}],
        }
    )
    assert text == "hi\n[image https://i/x.png low]\n→ f({}) [c1]"


def make(prompt, maxim_id, number, **fields):
    return PromptVersion.objects.create(prompt=prompt, maxim_id=maxim_id, number=number, **fields)


def test_diff_aligns_messages_by_index_and_counts_tokens(prompt):
    a = make(prompt, "a", 1, model_name="gpt-4o", messages=[{"role": "system", "content": "Be brief."}])
    b = make(
        prompt,
        "b",
        2,
        model_name="gpt-4o",
        messages=[{"role": "system", "content": "Be very brief."}, {"role": "user", "content": "Hello there"}],
    )
    sections = dict((title, rows) for title, rows, _ in diff_versions(a, b)["sections"])
    first, second = sections["Messages"]
    assert str(first.html) == "Be <ins>very </ins>brief." and first.token_delta == 1
    assert first.label == "Message 1 (system)"
    assert second.changed and str(second.html) == "<ins>Hello there</ins>" and second.token_delta > 4
    assert diff_versions(a, b)["token_delta"] == first.token_delta + second.token_delta


def test_diff_matches_tools_by_name_and_parameters_by_key(prompt):
    schema = {"type": "object", "properties": {}}
    a = make(
        prompt,
        "a",
        1,
        model_parameters={"temperature": 0.2, "seed": 1},
        tools=[
            {"name": "keep", "description": "", "parameters": schema},
            {"name": "gone", "description": "", "parameters": schema},
        ],
    )
    b = make(
        prompt,
        "b",
        2,
        model_parameters={"temperature": 0.7, "seed": 1, "max_tokens": 10},
        tools=[
            {"name": "new", "description": "", "parameters": schema},
            {"name": "keep", "description": "changed", "parameters": schema},
        ],
    )
    sections = dict((title, rows) for title, rows, _ in diff_versions(a, b)["sections"])
    tools = {row.label: row for row in sections["Tools"]}
    assert list(tools) == ["keep", "gone", "new"]
    assert tools["keep"].changed and "<ins>&quot;changed&quot;,</ins>" in str(tools["keep"].html)
    assert tools["gone"].new == "" and tools["new"].old == ""
    params = {row.label: row for row in sections["Parameters"]}
    assert str(params["temperature"].html) == "<del>0.2</del><ins>0.7</ins>"
    assert not params["seed"].changed and params["max_tokens"].old == ""


def test_diff_page_shows_highlighted_changes(client_for, viewer, prompt):
    a = make(prompt, "a", 1, messages=[{"role": "user", "content": "Hello <world>"}])
    b = make(prompt, "b", 2, messages=[{"role": "user", "content": "Hello <moon>"}])
    html = client_for(viewer).get(f"/prompts/{prompt.pk}/diff/?a={a.pk}&b={b.pk}").content.decode()
    assert "<del>&lt;world&gt;</del><ins>&lt;moon&gt;</ins>" in html
    assert "≈ approximate" in html


def test_diff_page_without_a_pick_offers_the_picker(client_for, viewer, prompt):
    make(prompt, "a", 1)
    make(prompt, "b", 2)
    html = client_for(viewer).get(f"/prompts/{prompt.pk}/diff/").content.decode()
    assert 'id="diff-picker"' in html and 'id="diff"' not in html


def test_diff_of_a_version_from_another_prompt_is_404(client_for, viewer, prompt, workspace):
    from prompts_app.models import Prompt

    other = Prompt.objects.create(workspace=workspace, maxim_id="p2", name="Other")
    a = make(prompt, "a", 1)
    b = make(other, "b", 1)
    assert client_for(viewer).get(f"/prompts/{prompt.pk}/diff/?a={a.pk}&b={b.pk}").status_code == 404


def test_outsider_gets_404_on_the_diff(client_for, outsider, prompt):
    a = make(prompt, "a", 1)
    assert client_for(outsider).get(f"/prompts/{prompt.pk}/diff/?a={a.pk}&b={a.pk}").status_code == 404


def test_a_rewritten_sentence_reads_as_one_change_not_interleaved_words():
    assert word_diff("You are kind.", "Hi, I am {{name}}.") == "<del>You are kind.</del><ins>Hi, I am {{name}}.</ins>"
    assert word_diff("a <b> c", "a <i> c") == "a <del>&lt;b&gt;</del><ins>&lt;i&gt;</ins> c"


def long_output_and_a_variant(words: int = 2_000) -> tuple[str, str]:
    import random

    rng = random.Random(5)
    vocabulary = "the a of to and in is was for on that with your order refund parcel".split()
    vocabulary += [f"word{i}" for i in range(300)]
    old = [rng.choice(vocabulary) for _ in range(words)]
    new = [f"changed{i}" if i % 10 == 0 else word for i, word in enumerate(old)]
    return " ".join(old), " ".join(new)


def test_a_2000_word_diff_takes_well_under_a_second():
    # Guards a blow-up (this took 18 s to minutes); bench/bench_diff.py has the real figures.
    import time

    from django.core.cache import cache

    cache.clear()
    old, new = long_output_and_a_variant()
    started = time.perf_counter()
    html = str(word_diff(old, new))
    assert time.perf_counter() - started < 1.0
    assert html.count("<ins>") == 200 and html.count("<del>") == 200
    assert "<del>" not in str(word_diff(old, old))


def test_a_huge_diff_falls_back_to_whole_lines():
    # bench/bench_diff.py times it (50,000 words: ~0.2 s)
    old_lines = [f"line {i} says something about order {i % 7}" for i in range(8_000)]
    new_lines = [line if i % 50 else line + " changed" for i, line in enumerate(old_lines)]
    html = str(word_diff("\n".join(old_lines), "\n".join(new_lines)))
    assert (
        "<del>line 50 says something about order 1\n</del><ins>line 50 says something about order 1 changed\n</ins>"
        in html
    )


def test_diffs_of_long_texts_are_cached(monkeypatch):
    from django.core.cache import cache

    cache.clear()
    old, new = long_output_and_a_variant(500)
    first = word_diff(old, new)
    monkeypatch.setattr("prompts_app.diffing._diff_html", lambda a, b: pytest.fail("computed again"))
    assert word_diff(old, new) == first


def test_megabytes_of_output_are_diffed_from_their_start_and_the_page_says_so():
    """A viewer could ask for word diffs of 5 MB outputs again and again (14 s each): only the
    first MAX_DIFFED_CHARS of each side are compared, and the diff says where it stopped."""
    old = "".join(f"line {n} old\n" for n in range(400_000))
    new = "".join(f"line {n} new\n" for n in range(400_000))
    html = str(word_diff(old, new))
    assert html.endswith(f"only the first {MAX_DIFFED_CHARS:,} characters of each are compared here.</span>")
    assert "line 1000 " in html and "line 399999 " not in html
    assert len(html) < 4 * MAX_DIFFED_CHARS
    short = str(word_diff("a b c", "a x c"))
    assert "compared here" not in short and "<del>b</del><ins>x</ins>" in short
