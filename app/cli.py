"""The ``run.py`` command line: run, tree, check-config, events, replay, bench, doctor,
import-env.

Exit codes: 0 success; 1 the command failed (no instance answers, no journal,
the journal cannot be read or is damaged, an event cannot be written out,
the tree gave up, a doctor check failed); 2 the configuration or the
arguments are wrong (an ``.env`` that import-env cannot carry over), or the
data dir is held by another instance (``run``, ``replay --notify``). A
failure is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType

import requests

from actors.journal import journal_path
from app.replay import Selection, read_journal
from app.system import DataDirLockError, data_dir_lock
from realtime import config as config_module
from realtime.config import Config
from realtime.export import parse_since, write_jsonl, write_msgpack
from realtime.storage import StorageError
from supervision import TreeStartError, render_tree

logger = logging.getLogger("run")

EXIT_OK, EXIT_FAILED, EXIT_BAD_CONFIG = 0, 1, 2


def console_main() -> int:
    """The ``wanderer-realtime`` console script: the same as ``python run.py``."""
    return main(sys.argv[1:])


def main(argv: Sequence[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.handler
    return command(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="The wanderer real-time notifier engine.")
    parser.add_argument("--config", default="config.toml", help="path to config.toml")
    parser.set_defaults(handler=cmd_run)
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run until SIGINT/SIGTERM (the default)")
    run.add_argument("--config", default="config.toml")
    run.set_defaults(handler=cmd_run)

    tree = sub.add_parser("tree", help="print the live supervision tree of a running instance")
    tree.add_argument("--config", default="config.toml")
    tree.add_argument("--url", help="base URL of the instance (default: from the config)")
    tree.add_argument("--json", action="store_true", help="print JSON instead of a picture")
    tree.set_defaults(handler=cmd_tree)

    events = sub.add_parser("events", help="write journal events to stdout, oldest first")
    events.add_argument("--config", default="config.toml")
    _selection_arguments(events)
    events.add_argument("--format", choices=("jsonl", "msgpack"), default="jsonl")
    events.add_argument("--limit", type=int)
    events.set_defaults(handler=cmd_events)

    replay_parser = sub.add_parser(
        "replay", help="feed journal events (or a msgpack export) through the pipeline again"
    )
    replay_parser.add_argument("--config", default="config.toml")
    _selection_arguments(replay_parser)
    replay_parser.add_argument("--file", help="a msgpack export to replay instead of the journal")
    replay_parser.add_argument(
        "--notify", action="store_true", help="use the configured sinks (default: console only)"
    )
    replay_parser.set_defaults(handler=cmd_replay)

    bench = sub.add_parser(
        "bench", help="the end-to-end benchmark (or, with --soak, the soak) on loopback"
    )
    bench.add_argument("--json", action="store_true", help="print the report as JSON")
    bench.add_argument("--quick", action="store_true", help="shorter windows, fewer probes")
    bench.add_argument("--events", type=int, help="events in the memory run")
    bench.add_argument(
        "--soak", type=float, metavar="MINUTES", help="run the soak for MINUTES instead"
    )
    bench.set_defaults(handler=cmd_bench)

    check = sub.add_parser("check-config", help="validate and print the effective config")
    check.add_argument("--config", default="config.toml")
    check.set_defaults(handler=cmd_check_config)

    doctor = sub.add_parser(
        "doctor", help="check the outside world with the effective config (posts nothing)"
    )
    doctor.add_argument("--config", default="config.toml")
    doctor.add_argument(
        "--timeout", type=float, default=5.0, help="seconds for each network step (default 5)"
    )
    doctor.set_defaults(handler=cmd_doctor)

    import_env = sub.add_parser(
        "import-env", help="print a config.toml equivalent to a WandererNotifier (Elixir) .env"
    )
    import_env.add_argument("file", help="the .env file")
    import_env.set_defaults(handler=cmd_import_env)
    return parser


def _selection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", help="a seq or an ISO 8601 time (inclusive)")
    parser.add_argument("--until", help="a seq or an ISO 8601 time (inclusive)")
    parser.add_argument("--type", action="append", default=[], help="event type (repeatable)")
    parser.add_argument("--source", action="append", default=[], help="source (repeatable)")


def _selection(args: argparse.Namespace) -> Selection:
    since_seq, since_time = parse_since(args.since) if args.since else (None, None)
    until_seq, until_time = parse_since(args.until) if args.until else (None, None)
    return Selection(
        since_seq=since_seq,
        since_time=since_time,
        until_seq=until_seq,
        until_time=until_time,
        types=tuple(args.type),
        sources=tuple(args.source),
        limit=getattr(args, "limit", None),
    )


def _load(path: str) -> Config | None:
    try:
        return config_module.load(path)
    except config_module.ConfigError as error:
        print(f"config error: {error}", file=sys.stderr)
        return None


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def cmd_check_config(args: argparse.Namespace) -> int:
    loaded = _load(args.config)
    if loaded is None:
        return EXIT_BAD_CONFIG
    print(json.dumps(config_module.masked(loaded), indent=2))
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from app import doctor

    loaded = _load(args.config)
    if loaded is None:
        return EXIT_BAD_CONFIG
    if not args.timeout > 0:
        print("doctor: --timeout must be a positive number of seconds", file=sys.stderr)
        return EXIT_BAD_CONFIG
    return doctor.run_cli(loaded, timeout_s=args.timeout)


def cmd_import_env(args: argparse.Namespace) -> int:
    from app import import_env

    return import_env.run_cli(args.file)


def cmd_run(args: argparse.Namespace) -> int:
    from simulator.world import World

    loaded = _load(args.config)
    if loaded is None:
        return EXIT_BAD_CONFIG
    _setup_logging(loaded.app.log_level)
    try:
        # Before anything else: a second instance must not start the demo world either.
        with data_dir_lock(loaded.data_path):
            world = None
            if loaded.simulator.enabled:
                world = World(loaded.simulator, [m.slug for m in loaded.maps]).start()
                loaded = world.apply(loaded)
            try:
                return _run(loaded)
            finally:
                if world is not None:
                    world.stop()
    except DataDirLockError as error:
        logger.critical("cannot start: %s", error)
        return EXIT_BAD_CONFIG


def _run(loaded: Config) -> int:
    from app.system import build

    app = build(loaded)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s; shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        app.start()
    except TreeStartError as error:
        logger.critical("could not start: %s", error)
        return EXIT_FAILED
    logger.info("running; %s", app.listening.url())
    while not stop.is_set() and not app.tree.failed.is_set():
        stop.wait(0.2)
    if app.tree.failed.is_set():
        failure = app.tree.failure
        logger.critical(
            "the supervision tree gave up (%s); exiting", failure.message if failure else "?"
        )
        app.stop()
        return EXIT_FAILED
    stuck = app.stop()
    if stuck:
        logger.warning("stopped; actors that did not stop in time: %s", ", ".join(stuck))
    logger.info("stopped")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    """The benchmark runs its own simulated world and pipeline; it reads no config."""
    if args.soak is not None:
        from app.benchmark import soak

        if args.soak <= 0:
            print("bench: --soak needs a positive number of minutes", file=sys.stderr)
            return EXIT_BAD_CONFIG
        return soak.run_cli(args.soak, as_json=args.json)
    from app.benchmark import e2e

    return e2e.run_cli(quick=args.quick, events=args.events, as_json=args.json)


def cmd_tree(args: argparse.Namespace) -> int:
    loaded = _load(args.config)
    url = args.url
    token = ""
    if loaded is not None:
        token = loaded.http.token.value
        url = url or f"http://{loaded.http.bind}:{loaded.http.port}"
    if not url:
        print("no --url and no usable config to find the instance", file=sys.stderr)
        return EXIT_FAILED
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = requests.get(f"{url.rstrip('/')}/api/tree", headers=headers, timeout=5)
    except requests.RequestException as error:
        print(f"no instance answers at {url}: {type(error).__name__}", file=sys.stderr)
        return EXIT_FAILED
    if response.status_code != 200:
        print(f"{url} answered {response.status_code}: {response.text[:200]}", file=sys.stderr)
        return EXIT_FAILED
    tree = response.json()
    if args.json:
        print(json.dumps(tree, indent=2))
    else:
        print(render_tree(tree, colour=sys.stdout.isatty()))
    return EXIT_OK


def cmd_events(args: argparse.Namespace) -> int:
    """Exit 1 with one line on stderr when the journal cannot be read or an event written.

    Reads the journal read-only: it works beside a running instance.
    """
    loaded = _load(args.config)
    if loaded is None:
        return EXIT_BAD_CONFIG
    try:
        selection = _selection(args)
    except ValueError as error:
        print(f"events: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    path = journal_path(loaded)
    if not path.exists():
        print(f"events: no journal at {path}", file=sys.stderr)
        return EXIT_FAILED
    try:
        events = read_journal(path, selection)
        if args.format == "jsonl":
            write_jsonl(events, sys.stdout)
        else:
            write_msgpack(events, sys.stdout.buffer)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``| head``): not an error of ours, nothing more to say.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except (StorageError, ValueError, TypeError, OSError) as error:
        print(f"events: {_one_line(error)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def cmd_replay(args: argparse.Namespace) -> int:
    loaded = _load(args.config)
    if loaded is None:
        return EXIT_BAD_CONFIG
    _setup_logging("WARNING")
    try:
        with contextlib.ExitStack() as held:
            # --notify writes the live ledger: not beside a running instance.
            if args.notify:
                held.enter_context(data_dir_lock(loaded.data_path))
            return _replay(args, loaded)
    except DataDirLockError as error:
        print(f"replay: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG


def _replay(args: argparse.Namespace, loaded: Config) -> int:
    from app.replay import replay
    from app.system import handler_children
    from realtime.export import ExportFormatError, read_msgpack

    live_journal = journal_path(loaded)
    ledger = live_journal if args.notify else None
    try:
        if args.file:
            with open(args.file, "rb") as export:
                result = replay(
                    loaded,
                    read_msgpack(export),
                    lambda config: handler_children(config, ledger_database=ledger, announce=False),
                    notify=args.notify,
                )
        else:
            if not live_journal.exists():
                print(f"replay: no journal at {live_journal}", file=sys.stderr)
                return EXIT_FAILED
            result = replay(
                loaded,
                read_journal(live_journal, _selection(args)),
                lambda config: handler_children(config, ledger_database=ledger, announce=False),
                notify=args.notify,
            )
    except (ExportFormatError, StorageError, OSError, ValueError, RuntimeError) as error:
        print(f"replay: {_one_line(error)}", file=sys.stderr)
        return EXIT_FAILED
    summary = {
        "events": result.events,
        "seconds": round(result.seconds, 3),
        "decisions": result.decisions,
        "outcomes": result.outcomes,
    }
    print(json.dumps(summary, indent=2), file=sys.stderr)
    return EXIT_OK
