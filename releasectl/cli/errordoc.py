"""The error document of `--format json` (DESIGN.md): what the one error handler prints on
stdout when a command fails, and what a failing report (validate, ...) carries beside it."""

from __future__ import annotations

from typing import Any


def error_document(
    message: str,
    exit_code: int,
    *,
    file: str | None = None,
    line: int | None = None,
    field: str | None = None,
) -> dict[str, Any]:
    """`{"error": {"message", "file", "line", "field", "exit_code"}}`, null where unknown."""
    return {
        "error": {
            "message": message,
            "file": file,
            "line": line,
            "field": field,
            "exit_code": int(exit_code),
        }
    }


def json_error(exc: BaseException) -> dict[str, Any]:
    """The error document of an exception: a releasectl error's own file, line and field (its
    message without them); a bundle of several errors also lists each under `errors`."""
    from releasectl.cli.context import safe_text as redact
    from releasectl.errors import MultipleErrors, ReleasectlError, flatten

    if not isinstance(exc, ReleasectlError):
        return error_document(redact(f"internal error: {type(exc).__name__}: {exc}"), 1)
    loc = exc.location
    doc = error_document(
        redact(exc.message if loc is not None else str(exc)),
        exc.exit_code,
        file=loc.path if loc else None,
        line=loc.line if loc else None,
        field=loc.field if loc else None,
    )
    if isinstance(exc, MultipleErrors):
        doc["error"]["errors"] = [json_error(e)["error"] for e in flatten(exc)]
    return doc
