"""Pydantic models of every file and document releasectl reads or writes.

These are the contract: `releasectl schema export` turns them into the JSON Schemas in
`schemas/`. They hold data and field-level checks only; cross-file checks live in
`workspace.py` and the planner.
"""
