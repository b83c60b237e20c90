"""Forms by area: workspaces, versions, runs, compare. JSON is parsed inside fields."""
