"""What a plan changes, per step (`plan --analyze`, the `analysis` key of a plan document):
destructive or locking SQL, Redis keys deleted, renamed or given a shorter TTL and operations
outside a migration's scope, Kubernetes objects created, changed and pruned, Cedar access
gained and lost."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from releasectl.models.base import Model

Severity = Literal["destructive", "locking", "breaking"]


class SqlFinding(Model):
    rule: str = Field(description="Rule name, after squawk's (ban-drop-column, ...).")
    severity: Severity = Field(
        description="destructive: data is lost; locking: blocks reads or writes while it runs; "
        "breaking: fails on existing data or breaks clients that still use the old shape."
    )
    file: str = Field(description="The SQL file, relative to the workspace.")
    line: int = Field(description="Line of the statement in the file.")
    statement: str = Field(description="The statement (its first 200 characters).")
    message: str


class DataChange(Model):
    """Rows or columns a rehearsed SQL step removed from the copy."""

    table: str
    change: Literal["table dropped", "column dropped", "rows deleted"]
    column: str | None = None
    rows: int = Field(description="Rows lost (for a column: rows that held a value in it).")


class KeyCount(Model):
    pattern: str = Field(description="The scope pattern the keys match, or `(outside scope)`.")
    count: int


class KeyOperation(Model):
    """An operation on Redis keys: one that deletes, renames or expires keys, or one on keys
    the migration's declared scope does not cover (its backup does not hold them, so neither a
    rollback nor the rehearsal's copy has them)."""

    command: str = Field(description="DEL, RENAME, SCAN MATCH, ... (or the op of up.yaml).")
    key: str = Field(description="The key or pattern it names.")
    write: bool = Field(description="The operation changes data (false: it reads or scans).")
    source: Literal["static", "rehearsal"] = Field(
        description="static: read from the migration's files; rehearsal: seen on the copy."
    )
    outside_scope: bool = False
    file: str | None = None
    line: int | None = None
    real_keys: int | None = Field(
        default=None,
        description="Keys of the real target that match it (a read-only count; null: not counted).",
    )


class RedisChanges(Model):
    deleted: list[KeyCount] = Field(default_factory=list)
    renamed: list[KeyCount] = Field(default_factory=list)
    ttl_shortened: list[KeyCount] = Field(default_factory=list)
    created: list[KeyCount] = Field(default_factory=list)
    operations: list[KeyOperation] = Field(
        default_factory=list,
        description="The deletes, renames and expiries the part declares (up.yaml, down.yaml).",
    )
    outside_scope: list[KeyOperation] = Field(default_factory=list)
    scope: list[str] = Field(default_factory=list, description="The step's backup scope.")
    observed: bool = Field(
        default=False,
        description="Key counts come from a rehearsal (false: only the static reading).",
    )


class FieldChange(Model):
    path: str = Field(description="Dotted path of the field (`data.log_level`).")
    old: str | None = Field(description="Old value (null: absent); secret values are masked.")
    new: str | None = Field(description="New value (null: removed); secret values are masked.")


class ObjectChange(Model):
    change: Literal["created", "changed", "pruned"]
    kind: str
    name: str
    namespace: str | None = None
    fields: list[FieldChange] = Field(default_factory=list)


class AccessChange(Model):
    principal: str = Field(description='The principal, as Cedar writes it (User::"vera").')
    action: str = Field(description='The action (Action::"deploy").')
    resource: str
    source: str = Field(description="The policy test file whose entities made the request.")


class AccessChanges(Model):
    requests: int = Field(description="Requests evaluated under both policy sets.")
    gained: list[AccessChange] = Field(default_factory=list)
    lost: list[AccessChange] = Field(default_factory=list)


class StepAnalysis(Model):
    index: int = Field(description="The step's number in `steps` (1-based).")
    component: str
    type: str
    action: str
    migration: str | None = None
    sql: list[SqlFinding] = Field(default_factory=list)
    data: list[DataChange] = Field(
        default_factory=list, description="SQL data the rehearsal saw the step remove."
    )
    redis: RedisChanges | None = None
    kubernetes: list[ObjectChange] = Field(default_factory=list)
    cedar: AccessChanges | None = None
    notes: list[str] = Field(default_factory=list, description="What could not be analysed.")


class AnalysisSummary(Model):
    destructive: int = 0
    locking: int = 0
    breaking: int = 0
    rows_deleted: int = 0
    keys_deleted: int = 0
    keys_renamed: int = 0
    ttl_shortened: int = 0
    outside_scope: int = 0
    objects_created: int = 0
    objects_changed: int = 0
    objects_pruned: int = 0
    access_gained: int = 0
    access_lost: int = 0


class Analysis(Model):
    summary: AnalysisSummary
    steps: list[StepAnalysis] = Field(description="The steps with something to say, in plan order.")
