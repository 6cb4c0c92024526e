"""The OpenAPI description of ``byoa serve``: request bodies and the envelope.

Bodies are read and validated by the proxy itself (``router.proxy.edge``), so
these models only describe them; ``body_schema`` inlines a model's schema into
the operation (a self-contained document).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from router.accounts import Setting, Status


class WebhookConfig(BaseModel):
    endpoint: str = Field(default="", description="M0: empty, or an http(s) URL with a host")
    secret: str = ""


class TaskConfig(BaseModel):
    service_mode: str = ""
    webhook_config: WebhookConfig | None = None


class TaskInput(BaseModel):
    model_config = ConfigDict(extra="allow")
    prompt: str | None = None
    aspect_ratio: str | None = None
    process_mode: str | None = None
    skip_prompt_check: bool | None = None
    bot_id: int | None = None
    origin_task_id: str | None = None
    index: str | None = None


class TaskRequest(BaseModel):
    """GoAPI's unified request body (fields the router does not read pass through)."""

    model: str = Field(examples=["midjourney"])
    task_type: str = Field(examples=["imagine"])
    input: TaskInput
    config: TaskConfig | None = None


class AccountUpdate(BaseModel):
    """Change an account (L5). Secrets are write-only: stored, never shown."""

    model_config = ConfigDict(extra="forbid")
    status: Status | None = None
    until: str | None = Field(
        default=None, examples=["2026-12-01T23:00:00Z"],
        description="H1: with status disabled, banned or captcha_required, an ISO-8601 time "
                    "in the future at which the account becomes active again "
                    "(account_recovered)")
    setting: Setting | None = None
    discord_token: str | None = Field(default=None, description="write-only")


class ErrorInfo(BaseModel):
    code: int
    raw_message: str
    message: str
    detail: dict[str, Any] | None = None


class Envelope(BaseModel):
    code: int
    data: dict[str, Any] | None
    message: str


def _inline(node: Any, defs: Mapping[str, Any]) -> Any:
    """Replace ``$ref`` to ``$defs`` by the definitions (a self-contained schema)."""
    if isinstance(node, Mapping):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    inlined = _inline(schema, schema.get("$defs", {}))
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": inlined}}}}


ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": Envelope, "description": d} for s, d in (
        (400, "bad request (GoAPI envelope, data.error filled)"),
        (401, "missing or wrong x-api-key"),
        (404, "unknown task or account"),
        (409, "conflict"),
        (413, "body too large"),
        (503, "no capacity"),
    )
}
