"""What differs and what to do about it: naming, desired state, observed state, drift, dependency graph,
planner. Pure: no docker, no watchfiles, no I/O (checked by the import contract in pyproject.toml)."""
