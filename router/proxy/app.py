"""The HTTP surface: GoAPI's unified task API plus account and metrics endpoints.

Every answer, errors included, is GoAPI's envelope ``{code, data, message}``.
Bodies are read with a size limit and parsed by the proxy (``router.proxy.edge``),
not by FastAPI, so bad JSON and oversized bodies get the envelope too; the
OpenAPI document (``router.proxy.schema``) still describes the request bodies.
The ``x-api-key`` header is compared in constant time.
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from router.errors import RouterError, code_for_status
from router.proxy.edge import ApiError, check_key, parse_update, read_json
from router.proxy.envelope import envelope, error_envelope
from router.proxy.metrics import render_metrics
from router.proxy.schema import ERRORS, AccountUpdate, Envelope, TaskRequest, body_schema
from router.proxy.service import TaskService
from router.proxy.storecalls import StoreUnavailable

log = logging.getLogger(__name__)


#: The cyclic garbage collector's thresholds while serving. Every submit allocates
#: a few dozen containers and keeps some (the task and its record), so with the
#: default 700 a collection ran every few requests: about a tenth of the CPU per
#: routed submit (timed with ``gc.callbacks`` under the load of
#: benchmarks/bench_proxy_cpu.py). Reference counting still frees
#: everything that is not in a cycle at once; cycles wait a little longer.
GC_THRESHOLDS = (50_000, 20, 10)


def create_app(service: TaskService) -> FastAPI:
    """The FastAPI app around one ``TaskService`` (which owns the store)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        previous = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            yield
        finally:
            await service.stop()
            gc.set_threshold(*previous)

    app = FastAPI(title="byoa serve", version="0.1.0", lifespan=lifespan,
                  description="GoAPI-shaped Midjourney proxy with the BYOA router embedded.")
    _error_handlers(app)
    _task_routes(app, service)
    _account_routes(app, service)
    return app


#: Starlette's ``JSONResponse.render`` settings, with one encoder for the process
#: (``json.dumps`` with these arguments builds a new encoder for every answer).
_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None,
                           separators=(",", ":")).encode


class _JSONResponse(JSONResponse):
    """``JSONResponse`` with the same bytes, encoded by the shared encoder."""

    def render(self, content: Any) -> bytes:
        return _ENCODE(content).encode("utf-8")


def _json(status: int, content: dict[str, Any]) -> JSONResponse:
    return _JSONResponse(content, status_code=status)


def _error(code: str, message: str, *, status: int | None = None) -> JSONResponse:
    content = error_envelope(code, message, status=status)
    return _json(int(content["code"]), content)


#: Seconds a client is asked to wait after a 503 ``store_unavailable``.
RETRY_AFTER_S = 1


def _error_handlers(app: FastAPI) -> None:
    """Every error as GoAPI's envelope, its status from the error table."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.code, exc.message)

    @app.exception_handler(RouterError)
    async def _router_error(request: Request, exc: RouterError) -> JSONResponse:
        return _error(exc.code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(code_for_status(exc.status_code), str(exc.detail), status=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():  # never echo the input: it may hold a secret
            loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "path"))
            parts.append(f"{loc}: {err.get('msg', 'invalid')}")
        return _error("invalid_request", "; ".join(parts))

    @app.exception_handler(redis.RedisError)
    async def _store_error(request: Request, exc: redis.RedisError) -> JSONResponse:
        if not isinstance(exc, StoreUnavailable):  # known down: StoreCalls said it once
            log.warning("the shared store failed on %s: %s", request.url.path, exc)
        answer = _error("store_unavailable", "the shared store (Redis) did not answer in "
                        "time; nothing was accepted, retry shortly")
        answer.headers["Retry-After"] = str(RETRY_AFTER_S)
        return answer

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return _error("internal_error", "internal error")


def _task_routes(app: FastAPI, service: TaskService) -> None:
    """Create, get and cancel tasks (GoAPI's unified task API)."""
    cfg = service.config

    @app.post("/api/v1/task", response_model=Envelope, responses=ERRORS,
              openapi_extra=body_schema(TaskRequest), summary="Create a task")
    async def create_task(request: Request) -> JSONResponse:
        check_key(request, cfg.api_key)
        body = await read_json(request, cfg.max_body_bytes)
        status, content = await service.submit_async(body)
        try:
            return _json(status, content)
        except (TypeError, ValueError):  # a value the answer cannot hold (a bug)
            if status == 200:  # accepted: the client will never learn its task id
                await service.withdraw(content["data"]["task_id"])
            raise  # 500 internal_error

    @app.get("/api/v1/task/{task_id}", response_model=Envelope, responses=ERRORS,
             summary="Get a task")
    async def get_task(task_id: str, request: Request) -> JSONResponse:
        check_key(request, cfg.api_key)
        data = await service.get_async(task_id)
        if data is None:
            raise ApiError("task_not_found", f"no task with id {task_id}")
        return _json(200, envelope(200, data, "success"))

    @app.delete("/api/v1/task/{task_id}", response_model=Envelope, responses=ERRORS,
                summary="Cancel a pending task")
    async def cancel_task(task_id: str, request: Request) -> JSONResponse:
        check_key(request, cfg.api_key)
        status, content = await service.cancel(task_id)
        return _json(status, content)


def _account_routes(app: FastAPI, service: TaskService) -> None:
    """Accounts (list, change; L5) and the metrics."""
    cfg = service.config

    @app.get("/api/v1/accounts", response_model=Envelope, responses=ERRORS,
             summary="List accounts with fast time left")
    async def list_accounts(request: Request) -> JSONResponse:
        check_key(request, cfg.api_key)
        return _json(200, envelope(200, {"accounts": await service.accounts()}, "success"))

    @app.post("/api/v1/accounts/{account_id}", response_model=Envelope, responses=ERRORS,
              openapi_extra=body_schema(AccountUpdate),
              summary="Set an account's status, setting or secrets")
    async def update_account(account_id: str, request: Request) -> JSONResponse:
        check_key(request, cfg.api_key)
        upd = parse_update(await read_json(request, cfg.max_body_bytes))
        secrets = {"discord_token": upd.discord_token} if upd.discord_token is not None else {}
        view = await service.set_account(account_id, upd.status, upd.setting, secrets,
                                         until=upd.until)
        return _json(200, envelope(200, {"account": view}, "success"))

    @app.get("/metrics", response_class=PlainTextResponse, responses=ERRORS,
             summary="Prometheus metrics")
    async def metrics(request: Request) -> PlainTextResponse:
        check_key(request, cfg.api_key)
        accounts, length, fresh = await service.snapshot()
        return PlainTextResponse(render_metrics(service, accounts, length, fresh),
                                 media_type="text/plain; version=0.0.4")

    @app.get("/health", response_model=Envelope, responses=ERRORS,
             summary="Whether this process can serve (no API key needed)")
    async def health() -> JSONResponse:
        """Answered from this process's own state, never waiting for the store: 503
        ``store_unavailable`` while the store does not answer, or when it was
        emptied or loaded again since this process started (its epoch)."""
        problem = service.epoch.problem
        if problem is None and service.calls.down:
            problem = "the shared store (Redis) is not answering"
        if problem is not None:
            answer = _error("store_unavailable", problem)
            answer.headers["Retry-After"] = str(RETRY_AFTER_S)
            return answer
        return _json(200, envelope(200, {"status": "ok"}, "success"))
