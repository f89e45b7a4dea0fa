"""JSON Schemas generated from the models; `releasectl schema export` writes them to schemas/."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel

from releasectl.models.changelog import Changelog
from releasectl.models.error import ErrorDocument
from releasectl.models.history import HistoryEntry
from releasectl.models.migration import MigrationMeta
from releasectl.models.plan import Plan
from releasectl.models.release import Release
from releasectl.models.state import State, Status
from releasectl.models.workspace import TARGET_MODELS, WorkspaceFile

BASE_URL = "https://releasectl.dev/schemas"

SCHEMAS: dict[str, type[BaseModel]] = {
    "workspace": WorkspaceFile,
    "release": Release,
    "migration": MigrationMeta,
    "plan": Plan,
    "state": State,
    "status": Status,
    "history-entry": HistoryEntry,
    "changelog": Changelog,
    "error": ErrorDocument,
}


SERIALIZED = frozenset({"plan", "state", "status", "history-entry", "changelog", "error"})


def schema(name: str) -> dict[str, Any]:
    model = SCHEMAS[name]
    mode: Literal["validation", "serialization"] = (
        "serialization" if name in SERIALIZED else "validation"
    )
    doc = model.model_json_schema(by_alias=True, mode=mode)
    if name == "workspace":
        _type_targets(doc)
    out: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{BASE_URL}/{name}.schema.json",
    }
    out.update(doc)
    return out


def _type_targets(doc: dict[str, Any]) -> None:
    """Target settings are one model per component type. A target may name its `type`; an
    editor then completes and checks that model's fields only (`if`/`then`, and the OpenAPI
    style `discriminator` for tools that read it); without `type` any one model must match."""
    defs = doc.setdefault("$defs", {})
    refs = []
    chosen = []
    mapping = {}
    for ctype, model in TARGET_MODELS.items():
        sub = model.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(sub.pop("$defs", {}))
        defs[model.__name__] = sub
        ref = f"#/$defs/{model.__name__}"
        refs.append({"$ref": ref})
        mapping[ctype] = ref
        chosen.append(
            {
                "if": {"properties": {"type": {"const": ctype}}, "required": ["type"]},
                "then": {"$ref": ref},
            }
        )
    targets = defs["Environment"]["properties"]["targets"]
    targets["additionalProperties"] = {"$ref": "#/$defs/TargetSettings"}
    defs["TargetSettings"] = {
        "description": "Settings of a component's target; their shape follows its type "
        "(name it with `type:` and an editor offers only that type's fields).",
        "type": "object",
        "discriminator": {"propertyName": "type", "mapping": mapping},
        "anyOf": refs,
        "allOf": chosen,
    }


def render(name: str) -> str:
    return json.dumps(schema(name), indent=2, sort_keys=True) + "\n"


def all_names() -> list[str]:
    return sorted(SCHEMAS)
