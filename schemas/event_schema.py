"""JSON Schema of published events: every field marked required.

Events are written with ``model_dump_json()``, defaults included, so every field is on the wire, including
``schema_version`` and ``event_type``. Pydantic's validation schema lists only the fields without a default as
required; a subscriber generating types from the AsyncAPI document would then treat the ones it must rely on most
as optional.
"""

from __future__ import annotations

from pydantic.config import JsonDict


def every_field_required(schema: JsonDict) -> None:
    """``json_schema_extra`` for event models: each property is required, in declaration order."""
    properties = schema.get("properties")
    if isinstance(properties, dict):
        schema["required"] = list(properties)
