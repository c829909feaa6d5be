"""A ceiling on request bodies, enforced before the body is read: a request that declares a larger
Content-Length is answered 413 at once, and one that streams more than the ceiling (no or a false length) is
cut off at the ceiling and answered 413 — the service never holds more than the ceiling in memory for it."""

from __future__ import annotations

from typing import Any

import orjson

Scope = dict[str, Any]
Message = dict[str, Any]


class BodyTooLarge(Exception):
    """The body went past the ceiling while it was being read."""


class BodyLimit:
    """Pure ASGI middleware: refuse bodies over `max_bytes` with 413 and the contract's error body."""

    def __init__(self, app: Any, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    def _message(self) -> str:
        return (f"请求体超过上限 {self.max_bytes // (1024 * 1024)} MiB ({self.max_bytes} 字节); "
                "请分批提交, 每条命令的各字段也有长度上限 (见 casecore schema)")

    async def _refuse(self, send: Any) -> None:
        body = orjson.dumps({"ok": False, "error": {"code": "validation_error", "message": self._message()}})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(send)
                    return
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)
        except BaseExceptionGroup as group:  # a middleware that runs the app in a task group wraps it
            if group.subgroup(BodyTooLarge) is None:
                raise
            if not started:
                await self._refuse(send)
