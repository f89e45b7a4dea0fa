"""A plan: the ordered steps from recorded to desired state, with its rollback and digest."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from releasectl.models.base import Model

Action = Literal["up", "down", "deploy"]


class Step(Model):
    component: str = Field(description="The component this step changes.")
    type: str = Field(description="The component's type (service, redis, sql, ...).")
    action: Action = Field(
        description="up/down: run one migration; deploy: move a service to a version."
    )
    from_: int | str | None = Field(
        alias="from", description="Version before the step (null: not deployed yet)."
    )
    to: int | str | None = Field(description="Version after the step (null: undeployed).")
    migration: str | None = Field(
        default=None, description="Migration id (NNNN_slug) run by an up or down step."
    )
    checksum: str | None = Field(
        default=None, description="SHA-256 of the migration's files when planned."
    )
    backup: bool = Field(default=False, description="A scoped backup is taken before the step.")
    breaking: bool = Field(default=False, description="Needs --allow-breaking.")
    description: str | None = Field(
        default=None, description="The migration's description (migration.yaml)."
    )


class ReleaseMove(Model):
    from_: str | None = Field(alias="from", description="Recorded release (null: none yet).")
    to: str | None = Field(description="Desired release (null: a per-component plan).")


class StateRef(Model):
    lineage: str | None = Field(description="Lineage of the recorded state (null: no state).")
    serial: int = Field(description="Serial of the recorded state; 0 when there is none.")


class Plan(Model):
    format_version: Literal[1] = Field(default=1, description="Version of this document's shape.")
    env: str = Field(description="The environment the plan is for.")
    digest: str = Field(
        description="SHA-256 over the manifest, the steps' migration checksums and the recorded "
        "state (lineage + serial). apply refuses a plan whose digest no longer matches."
    )
    release: ReleaseMove = Field(description="The release recorded now and the one planned.")
    state: StateRef = Field(description="The recorded state the plan was made from.")
    steps: list[Step] = Field(description="The steps, in the order apply runs them.")
    rollback: list[Step] = Field(
        description="Steps that undo the plan, in order (the reverse of `steps`)."
    )
    workspace: str | None = Field(default=None, description="Workspace name.")
    manifest_checksum: str | None = Field(
        default=None, description="SHA-256 of the release manifest the plan was made from."
    )
    warnings: list[str] = Field(
        default_factory=list, description="What a reviewer should know: drift, promotion, ..."
    )

    @property
    def changes(self) -> bool:
        return bool(self.steps)
