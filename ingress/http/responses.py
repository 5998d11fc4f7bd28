"""A JSON response rendered by orjson: the check path's responses are small and many.

Every JSON answer is ``Cache-Control: no-store`` unless the route says otherwise: answers carry tenants' data and
some carry secrets shown once (a new or rotated API key, a webhook's signing secret), which no browser, proxy or
CDN may keep.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse

NO_STORE = "no-store"


class JsonResponse(JSONResponse):
    media_type = "application/json"

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        super().__init__(content, status_code, headers, media_type, background)
        self.headers.setdefault("Cache-Control", NO_STORE)

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
