from __future__ import annotations

from prompts_app.views import audit, batches, compare, compare_watch, history, members, runs, versions, workspaces

urlpatterns = [
    *workspaces.urlpatterns,
    *members.urlpatterns,
    *audit.urlpatterns,
    *versions.urlpatterns,
    *history.urlpatterns,  # before runs: /runs/export.csv must not look like a run
    *runs.urlpatterns,
    *compare.urlpatterns,
    *compare_watch.urlpatterns,
    *batches.urlpatterns,
]
