from __future__ import annotations

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

_NAV = [
    ("history", "History", "run_history"),
    ("costs", "Costs", "cost_review"),
    ("compare", "Compare", "comparison_list"),
    ("batches", "Batches", "batch_index"),
]


def nav(request: HttpRequest) -> dict:
    links = []
    for key, label, url_name in _NAV:
        try:
            links.append({"key": key, "label": label, "url": reverse(url_name)})
        except NoReverseMatch:
            continue
    return {"main_nav_links": links}
