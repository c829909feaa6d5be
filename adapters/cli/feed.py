"""`casecore events` (the CloudEvents feed as JSON Lines) and `casecore publish nats` (the feed into JetStream)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from adapters.cli._common import DbOption, dumps, err_console, open_app, open_wiring

publish_app = typer.Typer(help="把事件流转发到消息系统 (forward the event feed).", no_args_is_help=True)

EntitledOption = Annotated[bool, typer.Option(
    "--entitled", help="输出未脱敏的身份证号和姓名 (仅限有权使用个人信息的接收方)")]


def events(
    after: Annotated[int, typer.Option("--after", min=0, help="从此位置之后开始 (上次读到的最后一个 position)")] = 0,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="最多输出多少条")] = None,
    follow: Annotated[bool, typer.Option("--follow", help="读到末尾后继续等待新事件")] = False,
    entitled: EntitledOption = False,
    poll: Annotated[float, typer.Option("--poll", min=0.05, help="--follow 时的轮询间隔 (秒)")] = 0.5,
    db: DbOption = None,
) -> None:
    """按 position 顺序输出事件流 (CloudEvents 1.0, 一行一个 JSON)."""
    from adapters.integration.feed import follow_feed, read_feed

    app = open_app(db, read_only=True)
    out = sys.stdout
    feed = (follow_feed(app, after, limit, entitled=entitled, poll_seconds=poll) if follow
            else read_feed(app, after, limit, entitled=entitled))
    try:
        for ce in feed:
            out.write(dumps(ce) + "\n")
            if follow:
                out.flush()
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # the reader went away (`| head`)
        pass


@publish_app.command("nats")
def publish_nats_cmd(
    stream: Annotated[str, typer.Option("--stream", help="JetStream 流名称 (不存在时创建)")],
    url: Annotated[str, typer.Option("--url", envvar="CASECORE_NATS_URL", help="NATS 地址")] = "nats://127.0.0.1:4222",
    subject_prefix: Annotated[str, typer.Option("--subject-prefix", help="主题前缀")] = "casecore",
    once: Annotated[bool, typer.Option("--once", help="发布现有事件后退出 (适合定时任务)")] = False,
    batch: Annotated[int, typer.Option("--batch", min=1, help="每批发布并等待确认的条数")] = 200,
    poll: Annotated[float, typer.Option("--poll", min=0.05, help="等待新事件的轮询间隔 (秒)")] = 0.5,
    entitled: EntitledOption = False,
    db: DbOption = None,
) -> None:
    """把事件流转发到 NATS JetStream: Nats-Msg-Id 为事件 id, 位置在确认后才前进, 崩溃重启不丢不重."""
    import asyncio

    from nats.errors import Error as NatsError

    from adapters.integration.nats_publisher import PositionStore, publish_nats

    wiring = open_wiring(db)
    app = wiring.app
    positions = PositionStore(wiring.store.sqlalchemy_url, f"nats:{stream}:{subject_prefix}")
    try:
        stats = asyncio.run(publish_nats(app, positions, url, stream, prefix=subject_prefix, once=once,
                                         entitled=entitled, batch=batch, poll_seconds=poll))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except (OSError, TimeoutError, NatsError) as exc:
        err_console.print(f"[red]无法连接或发布到 NATS {url}: {exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        positions.close()
    err_console.print(f"已发布 {stats.published} 条 (重复被丢弃 {stats.duplicates} 条), 位置 {stats.position}")


def register(app: typer.Typer) -> None:
    app.command()(events)
    app.add_typer(publish_app, name="publish")
