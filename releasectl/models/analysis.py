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
    message: str = Field(description="What the statement does and why it matters.")


class DataChange(Model):
    """Rows or columns a rehearsed SQL step removed from the copy."""

    table: str = Field(description="The table (schema.table on PostgreSQL).")
    change: Literal["table dropped", "column dropped", "rows deleted"] = Field(
        description="What the step removed."
    )
    column: str | None = Field(default=None, description="The dropped column.")
    rows: int = Field(description="Rows lost (for a column: rows that held a value in it).")


class KeyCount(Model):
    pattern: str = Field(description="The scope pattern the keys match, or `(outside scope)`.")
    count: int = Field(description="How many keys.")


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
    outside_scope: bool = Field(default=False, description="The declared scope does not cover it.")
    file: str | None = Field(default=None, description="The migration file that names it.")
    line: int | None = Field(default=None, description="Its line in that file.")
    real_keys: int | None = Field(
        default=None,
        description="Keys of the real target that match it (a read-only count; null: not counted).",
    )


class RedisChanges(Model):
    deleted: list[KeyCount] = Field(default_factory=list, description="Keys gone after the step.")
    renamed: list[KeyCount] = Field(
        default_factory=list, description="Keys that moved to another name."
    )
    ttl_shortened: list[KeyCount] = Field(
        default_factory=list, description="Keys that expire sooner (or at all) after the step."
    )
    created: list[KeyCount] = Field(default_factory=list, description="Keys the step added.")
    operations: list[KeyOperation] = Field(
        default_factory=list,
        description="The deletes, renames and expiries the part declares (up.yaml, down.yaml).",
    )
    outside_scope: list[KeyOperation] = Field(
        default_factory=list, description="Operations on keys the declared scope does not cover."
    )
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
    change: Literal["created", "changed", "pruned"] = Field(description="What happens to it.")
    kind: str = Field(description="The object's kind.")
    name: str = Field(description="The object's name.")
    namespace: str | None = Field(default=None, description="Its namespace, when it names one.")
    fields: list[FieldChange] = Field(
        default_factory=list, description="The fields that change (changed objects)."
    )


class AccessChange(Model):
    principal: str = Field(description='The principal, as Cedar writes it (User::"vera").')
    action: str = Field(description='The action (Action::"deploy").')
    resource: str = Field(description='The resource (Service::"prod/auth-service").')
    source: str = Field(description="The policy test file whose entities made the request.")


class AccessChanges(Model):
    requests: int = Field(description="Requests evaluated under both policy sets.")
    gained: list[AccessChange] = Field(
        default_factory=list, description="Requests the new set allows and the old one denies."
    )
    lost: list[AccessChange] = Field(
        default_factory=list, description="Requests the old set allows and the new one denies."
    )


class StepAnalysis(Model):
    index: int = Field(description="The step's number in `steps` (1-based).")
    component: str = Field(description="The step's component.")
    type: str = Field(description="The component's type.")
    action: str = Field(description="up, down or deploy.")
    migration: str | None = Field(default=None, description="The step's migration.")
    sql: list[SqlFinding] = Field(
        default_factory=list, description="Destructive, locking and breaking SQL statements."
    )
    data: list[DataChange] = Field(
        default_factory=list, description="SQL data the rehearsal saw the step remove."
    )
    redis: RedisChanges | None = Field(default=None, description="What a Redis step changes.")
    kubernetes: list[ObjectChange] = Field(
        default_factory=list, description="Objects created, changed and pruned."
    )
    cedar: AccessChanges | None = Field(default=None, description="Who gains and who loses access.")
    notes: list[str] = Field(default_factory=list, description="What could not be analysed.")


class AnalysisSummary(Model):
    destructive: int = Field(default=0, description="Destructive SQL statements.")
    locking: int = Field(default=0, description="Locking SQL statements.")
    breaking: int = Field(default=0, description="SQL statements that break on data or clients.")
    rows_deleted: int = Field(
        default=0, description="Rows the rehearsal saw deleted (dropped tables included)."
    )
    keys_deleted: int = Field(default=0, description="Redis keys deleted.")
    keys_renamed: int = Field(default=0, description="Redis keys renamed.")
    ttl_shortened: int = Field(default=0, description="Redis keys whose TTL got shorter.")
    outside_scope: int = Field(default=0, description="Operations outside a declared scope.")
    objects_created: int = Field(default=0, description="Kubernetes objects created.")
    objects_changed: int = Field(default=0, description="Kubernetes objects changed.")
    objects_pruned: int = Field(default=0, description="Kubernetes objects pruned.")
    access_gained: int = Field(default=0, description="Cedar requests newly allowed.")
    access_lost: int = Field(default=0, description="Cedar requests newly denied.")


class Analysis(Model):
    summary: AnalysisSummary = Field(description="Counts over every step.")
    steps: list[StepAnalysis] = Field(description="The steps with something to say, in plan order.")
