"""A store that cannot be read or written (locked by another writer, read-only, gone, unreachable) is the
operator's to fix: one sentence naming the store and what to do, at the CLI's and the HTTP service's edge —
never a traceback."""

from __future__ import annotations

import sqlite3

#: (words in the driver's message, what it means, what to do)
_REASONS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("locked", "busy"), "正被其他进程锁定 (另一个写入正在进行)",
     "请等其他写入 (导入、重建、另一个 apply) 结束后重试"),
    (("readonly", "read-only", "read only", "permission denied"), "是只读的, 无法写入",
     "请检查事件库文件及其所在目录的写权限, 或改用可写的事件库 (--db)"),
    (("unable to open", "no such file", "not a database", "disk i/o", "disk image is malformed"),
     "无法打开或已损坏", "请检查 --db / CASECORE_DB 指向的文件是否存在且完好"),
    (("connection refused", "could not connect", "connection failed", "timeout expired", "server closed"),
     "无法连接", "请检查数据库服务是否运行以及连接地址"),
)


def _driver_errors() -> tuple[type[BaseException], ...]:
    from eventsourcing.persistence import OperationalError as LibraryOperationalError
    from sqlalchemy.exc import OperationalError as SAOperationalError

    found: list[type[BaseException]] = [sqlite3.OperationalError, LibraryOperationalError, SAOperationalError]
    try:
        import psycopg

        found.append(psycopg.OperationalError)
    except ImportError:  # PostgreSQL support not installed
        pass
    return tuple(found)


def store_failure(exc: BaseException, store: str) -> str | None:
    """The sentence for an exception (or one it was raised from) that says the store cannot be used; None
    when it is not such an exception."""
    kinds = _driver_errors()
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, kinds):
            detail = str(current).strip().splitlines()[0] if str(current).strip() else type(current).__name__
            lowered = detail.lower()
            for words, meaning, todo in _REASONS:
                if any(w in lowered for w in words):
                    return f"事件库 {store} {meaning} ({detail}); {todo}"
            return f"事件库 {store} 无法读写 ({detail}); 请检查事件库后重试"
        current = current.__cause__ or current.__context__
    return None
