"""Restart latency: from a crash to the restarted actor answering by name.

``python -m bench.restart [--restarts 100]`` crashes one supervised worker
repeatedly (fault injection, as a bug in a handler would) and measures, for
each crash, the time until its stable name resolves to a new instance that
answers a ping. Reported twice: with no restart backoff (the mechanism's own
cost) and with the shipped configuration's backoff (min 10 ms, full jitter).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Any

from supervision import (
    Backoff,
    ChildSpec,
    Crash,
    Ping,
    SupervisedActor,
    SupervisionTree,
    SupervisorSpec,
)

_STABLE_S = 0.005


class _Worker(SupervisedActor):
    def on_receive(self, message: Any) -> Any:
        return message


def measure(restarts: int, backoff: Backoff) -> list[float]:
    # max_seconds is tiny so that every crash is an isolated one: the backoff
    # starts from its minimum (a crash loop's growing delay is by design).
    spec = SupervisorSpec(
        "root",
        [ChildSpec("worker", _Worker.start)],
        max_restarts=restarts + 1,
        max_seconds=_STABLE_S,
        backoff=backoff,
    )
    tree = SupervisionTree(spec).start()
    latencies = []
    try:
        for _ in range(restarts):
            time.sleep(2 * _STABLE_S)  # let the child count as stable again
            before = tree.registry.require("worker")
            crashed = time.perf_counter()
            before.tell(Crash())
            while True:
                ref = tree.registry.lookup("worker")
                if ref is not None and ref is not before:
                    ref.ask(Ping(), timeout=5)
                    break
                time.sleep(0.0002)
            latencies.append(time.perf_counter() - crashed)
    finally:
        tree.stop()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--restarts", type=int, default=100)
    args = parser.parse_args()
    print(f"restart latency, {args.restarts} restarts; Python {platform.python_version()}")
    print(f"{'backoff':<28} {'median ms':>10} {'p95 ms':>8} {'worst ms':>9}")
    for label, backoff in (
        ("none (mechanism only)", Backoff(0.0, 0.0)),
        ("shipped (0-10 ms jitter)", Backoff(0.01, 5.0)),
    ):
        samples = sorted(measure(args.restarts, backoff))
        p95 = samples[int(0.95 * (len(samples) - 1))]
        print(
            f"{label:<28} {statistics.median(samples) * 1000:>10.2f} "
            f"{p95 * 1000:>8.2f} {samples[-1] * 1000:>9.2f}"
        )


if __name__ == "__main__":
    main()
