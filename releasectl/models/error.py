"""The error document of `--format json` (built by releasectl.cli.errordoc)."""

from __future__ import annotations

from pydantic import Field

from releasectl.models.base import Model


class ErrorDetail(Model):
    message: str = Field(description="What went wrong, for a person (secrets redacted).")
    file: str | None = Field(
        description="The file the error is about, relative to the workspace (null: none)."
    )
    line: int | None = Field(description="1-based line in `file` (null: unknown).")
    field: str | None = Field(
        description="Dotted path of the field in `file`, e.g. components.redis.version."
    )
    exit_code: int = Field(description="The command's exit code (see DESIGN.md's table).")
    errors: list[ErrorDetail] | None = Field(
        default=None, description="Each error, when several were found together."
    )


class ErrorDocument(Model):
    error: ErrorDetail = Field(description="Why the command failed.")
