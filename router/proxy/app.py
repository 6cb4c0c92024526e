"""The HTTP surface: GoAPI's unified task API plus account and metrics endpoints.

Every answer, errors included, is GoAPI's envelope ``{code, data, message}``.
Bodies are read with a size limit and parsed here (not by FastAPI), so bad JSON
and oversized bodies get the envelope too; the OpenAPI document still describes
the request bodies. The ``x-api-key`` header is compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from router.accounts import Setting, Status
from router.errors import RouterError
from router.proxy.body import BodyError, decode_body
from router.proxy.envelope import envelope, error_envelope
from router.proxy.metrics import render_metrics
from router.proxy.service import TaskService


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# ------------------------------------------------------------ OpenAPI models
class WebhookConfig(BaseModel):
    endpoint: str = ""
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


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
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


def _check_key(request: Request, api_key: str) -> None:
    given = request.headers.get("x-api-key", "")
    if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"),
                               api_key.encode("utf-8")):
        raise ApiError(401, "unauthorized", "missing or wrong x-api-key header")


async def _read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "body_too_large",
                       f"request body is {int(declared)} bytes; the limit is {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large",
                           f"request body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    try:
        return decode_body(b"".join(chunks))
    except BodyError as exc:
        raise ApiError(400, "invalid_json", str(exc)) from None


def _json(status: int, content: dict[str, Any]) -> JSONResponse:
    return JSONResponse(content, status_code=status)


def create_app(service: TaskService) -> FastAPI:
    """The FastAPI app around one ``TaskService`` (which owns the store)."""
    cfg = service.config

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title="byoa serve", version="0.1.0", lifespan=lifespan,
                  description="GoAPI-shaped Midjourney proxy with the BYOA router embedded.")

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _json(exc.status, error_envelope(exc.status, exc.code, exc.message))

    @app.exception_handler(RouterError)
    async def _router_error(request: Request, exc: RouterError) -> JSONResponse:
        status = 404 if exc.code == "unknown_account" else 409
        return _json(status, error_envelope(status, exc.code, exc.message))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _json(exc.status_code, error_envelope(exc.status_code, code, str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():  # never echo the input: it may hold a secret
            loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "path"))
            parts.append(f"{loc}: {err.get('msg', 'invalid')}")
        return _json(400, error_envelope(400, "invalid_request", "; ".join(parts)))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        import logging

        logging.getLogger(__name__).exception("unhandled error on %s", request.url.path)
        return _json(500, error_envelope(500, "internal_error", "internal error"))

    @app.post("/api/v1/task", response_model=Envelope, responses=ERRORS,
              openapi_extra=_body_schema(TaskRequest), summary="Create a task")
    async def create_task(request: Request) -> JSONResponse:
        _check_key(request, cfg.api_key)
        body = await _read_json(request, cfg.max_body_bytes)
        status, content = await service.submit_async(body)
        return _json(status, content)

    @app.get("/api/v1/task/{task_id}", response_model=Envelope, responses=ERRORS,
             summary="Get a task")
    async def get_task(task_id: str, request: Request) -> JSONResponse:
        _check_key(request, cfg.api_key)
        data = service.get(task_id)
        if data is None:
            raise ApiError(404, "task_not_found", f"no task with id {task_id}")
        return _json(200, envelope(200, data, "success"))

    @app.delete("/api/v1/task/{task_id}", response_model=Envelope, responses=ERRORS,
                summary="Cancel a pending task")
    async def cancel_task(task_id: str, request: Request) -> JSONResponse:
        _check_key(request, cfg.api_key)
        status, content = service.cancel(task_id)
        return _json(status, content)

    @app.get("/api/v1/accounts", response_model=Envelope, responses=ERRORS,
             summary="List accounts with fast time left")
    async def list_accounts(request: Request) -> JSONResponse:
        _check_key(request, cfg.api_key)
        return _json(200, envelope(200, {"accounts": service.accounts()}, "success"))

    @app.post("/api/v1/accounts/{account_id}", response_model=Envelope, responses=ERRORS,
              openapi_extra=_body_schema(AccountUpdate),
              summary="Set an account's status, setting or secrets")
    async def update_account(account_id: str, request: Request) -> JSONResponse:
        _check_key(request, cfg.api_key)
        raw = await _read_json(request, cfg.max_body_bytes)
        upd = _parse_update(raw)
        secrets = {"discord_token": upd.discord_token} if upd.discord_token is not None else {}
        view = service.set_account(account_id, upd.status, upd.setting, secrets)
        return _json(200, envelope(200, {"account": view}, "success"))

    @app.get("/metrics", response_class=PlainTextResponse, responses=ERRORS,
             summary="Prometheus metrics")
    async def metrics(request: Request) -> PlainTextResponse:
        _check_key(request, cfg.api_key)
        return PlainTextResponse(render_metrics(service),
                                 media_type="text/plain; version=0.0.4")

    return app


def _parse_update(raw: Any) -> AccountUpdate:
    """Validate an account update without ever echoing a secret value."""
    if not isinstance(raw, Mapping):
        raise ApiError(400, "invalid_request", "expected a JSON object with status, setting "
                       "and/or discord_token")
    unknown = sorted(set(raw) - {"status", "setting", "discord_token"})
    if unknown:
        raise ApiError(400, "invalid_request", f"unknown field(s) {', '.join(unknown)}; "
                       "allowed: status, setting, discord_token")
    status, setting, token = raw.get("status"), raw.get("setting"), raw.get("discord_token")
    if status is not None and (not isinstance(status, str)
                               or status not in {s.value for s in Status}):
        raise ApiError(400, "invalid_request", "status: expected one of "
                       f"{', '.join(s.value for s in Status)}")
    if setting is not None and (not isinstance(setting, str)
                                or setting not in {s.value for s in Setting}):
        raise ApiError(400, "invalid_request", "setting: expected one of "
                       f"{', '.join(s.value for s in Setting)}")
    if token is not None and (not isinstance(token, str) or not token.strip()):
        raise ApiError(400, "invalid_request", "discord_token: expected a non-empty string")
    if status is None and setting is None and token is None:
        raise ApiError(400, "invalid_request", "nothing to change: give status, setting "
                       "and/or discord_token")
    return AccountUpdate(status=Status(status) if status else None,
                         setting=Setting(setting) if setting else None, discord_token=token)
