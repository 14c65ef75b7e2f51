"""The running system: the supervision tree built from the configuration.

::

    root                       one_for_one
    ├── metrics
    ├── journal
    ├── pipeline               one_for_one
    │   ├── tracking, static_info, notifier, dedup, flow_control, router
    ├── sources                one_for_one
    │   ├── kills, kills:characters
    │   └── map:{slug}
    └── web
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from actors import (
    dedup,
    flow_control,
    journal,
    kills_source,
    map_source,
    notifier,
    router,
    static_info,
    tracking,
)
from actors.allocator import limit_arenas
from actors.metrics import MetricsActor
from actors.protocol import Names
from actors.web import WebActor, WebApp
from realtime.config import Config
from supervision import (
    Backoff,
    ChildSpec,
    MailboxSpec,
    OverflowPolicy,
    Registry,
    SupervisionTree,
    SupervisorSpec,
)

LOCK_FILE = "instance.lock"
"""The file in ``[app] data_dir`` whose lock a writing instance holds (it holds its PID)."""


class DataDirLockError(RuntimeError):
    """The data dir cannot be held: another live process holds it (the message names
    it), or the lock file cannot be created."""


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Hold the data dir for this process: only one instance may write it at a time.

    An ``flock`` on ``data_dir/instance.lock``, which holds this process's PID.
    The kernel releases it when the process ends, however it ends (``SIGKILL``
    included), so a stale file never blocks a start. Nothing else in
    ``data_dir`` is touched before the lock is held.

    Raises:
        DataDirLockError: another process holds it (the message names its
            PID), or the directory or the file cannot be created.
    """
    path = data_dir / LOCK_FILE
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        msg = f"cannot create the lock file {path}: {error}"
        raise DataDirLockError(msg) from error
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 64, 0).decode("ascii", "replace").strip() or "unknown"
            msg = (
                f"the data dir {data_dir} is in use by process {holder} (it holds {path}); "
                "stop that instance first, or point [app] data_dir elsewhere"
            )
            raise DataDirLockError(msg) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(descriptor)  # releases the lock


@dataclass(slots=True)
class Listening:
    """Where the web actor listens, once it does (port 0 binds any free port)."""

    ready: threading.Event = field(default_factory=threading.Event)
    address: tuple[str, int] | None = None

    def set(self, address: tuple[str, int]) -> None:
        self.address = address
        self.ready.set()

    def url(self, timeout_s: float = 10.0) -> str:
        if not self.ready.wait(timeout_s) or self.address is None:
            msg = f"the web actor did not listen within {timeout_s}s"
            raise TimeoutError(msg)
        host, port = self.address
        return f"http://{host}:{port}"


@dataclass(frozen=True, slots=True)
class App:
    """One instance of the system: its tree and its web front."""

    config: Config
    tree: SupervisionTree
    web: WebApp
    listening: Listening

    @property
    def registry(self) -> Registry:
        return self.tree.registry

    def start(self) -> App:
        self.tree.start()
        return self

    def stop(self) -> list[str]:
        """Ordered shutdown; the names of actors that were stuck."""
        return self.tree.stop()

    def __enter__(self) -> App:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def supervisor(config: Config, name: str, children: Sequence[ChildSpec]) -> SupervisorSpec:
    settings = config.supervision
    return SupervisorSpec(
        name=name,
        children=tuple(children),
        max_restarts=settings.max_restarts,
        max_seconds=settings.max_seconds,
        backoff=Backoff(settings.backoff_min_s, settings.backoff_max_s),
    )


def handler_children(
    config: Config, *, ledger_database: Path | None = None, announce: bool = True
) -> list[ChildSpec]:
    """``tracking`` then ``notifier``: the router's handlers; between them
    ``static_info`` (when enabled and a map is configured), which the notifier asks.

    ``announce``: the notifier says when the program started (not in a replay).
    """
    children = [
        tracking.child_spec(config),
        notifier.child_spec(config, ledger_database=ledger_database, announce=announce),
    ]
    if config.static_info.enabled and config.maps:
        children.insert(1, static_info.child_spec(config))
    return children


def pipeline_children(config: Config) -> list[ChildSpec]:
    """The handlers start first, so that the router finds them when events flow."""
    return [
        *handler_children(config),
        dedup.child_spec(config),
        flow_control.child_spec(config),
        router.child_spec(config),
    ]


def source_children(config: Config) -> list[ChildSpec]:
    """``kills`` and ``kills:characters`` (when enabled), one ``map:{slug}`` per map."""
    kills = [
        kills_source.child_spec(config, name=name, scope=scope)
        for name, scope in kills_source.kills_connections(config)
    ]
    return kills + [map_source.child_spec(config, map_config) for map_config in config.maps]


def metrics_spec(config: Config) -> ChildSpec:
    # REJECT, not BLOCK: a stuck metrics actor must never block a reporter
    # (sources included); reporters keep their counts for the next report.
    return ChildSpec(
        name=Names.METRICS,
        start=lambda ctx: MetricsActor.start(ctx, config),
        mailbox=MailboxSpec(config.mailbox.metrics, OverflowPolicy.REJECT),
        shutdown_s=config.supervision.shutdown_timeout_s,
    )


def build(config: Config) -> App:
    """Assemble (without starting) the tree for ``config``.

    Limits the C allocator's arenas first (see :mod:`actors.allocator`): the
    tree's threads have not started yet.
    """
    limit_arenas()
    registry = Registry()
    web_app = WebApp(config, registry)
    listening = Listening()
    web = ChildSpec(
        name=Names.WEB,
        start=lambda ctx: WebActor.start(ctx, web_app, listening.set),
        mailbox=MailboxSpec(config.mailbox.web),
        shutdown_s=config.supervision.shutdown_timeout_s,
    )
    pipeline = supervisor(config, Names.PIPELINE, pipeline_children(config))
    sources = supervisor(config, Names.SOURCES, source_children(config))
    children = [
        *([metrics_spec(config)] if config.metrics.enabled else []),
        journal.child_spec(config),
        pipeline.as_child(),
        sources.as_child(shutdown_s=config.supervision.shutdown_timeout_s * 4),
        web,
    ]
    tree = SupervisionTree(supervisor(config, Names.ROOT, children), registry)
    web_app.tree = tree
    return App(config, tree, web_app, listening)
