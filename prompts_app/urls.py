from __future__ import annotations

from prompts_app.views import compare, runs, versions, workspaces

urlpatterns = [
    *workspaces.urlpatterns,
    *versions.urlpatterns,
    *runs.urlpatterns,
    *compare.urlpatterns,
]
