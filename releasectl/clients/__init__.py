"""Connections shared by state backends and targets: Redis, Kubernetes, SQL.

Nothing here imports a target, a state backend, the planner or the engine."""
