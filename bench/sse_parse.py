"""SSE parsing throughput on realistic map events, against a naive bytes.split.

The stream is Wanderer map events (about 400 bytes each: ``id``, ``event`` and
a JSON ``data`` envelope) with a keepalive comment now and then, fed in 4 KB
chunks as a socket would return them. The baseline reassembles the same
chunks and splits them on blank lines with ``bytes.split``: the least work
any framing can do (no line-end variants, no decoding, no fields), so the
ratio is the price of a spec-complete parser.

Run: ``python -m bench.sse_parse``
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import orjson

from realtime.sse import SseEvent, SseParser

EVENTS = 20_000
CHUNK_BYTES = 4096
ROUNDS = 5
SEED = 7
_TYPES = ("add_system", "character_updated", "map_kill", "signature_added", "connection_added")
_ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _event(rng: random.Random, index: int) -> bytes:
    ulid = "01JDZ" + "".join(rng.choice(_ULID_ALPHABET) for _ in range(21))
    type_ = _TYPES[index % len(_TYPES)]
    payload = {
        "solar_system_id": 31_000_000 + rng.randrange(3000),
        "killmail_id": 120_000_000 + index,
        "name": f"J{rng.randrange(100_000, 999_999)}",
        "character_eve_id": str(2_110_000_000 + rng.randrange(1_000_000)),
        "corporation_id": 98_000_000 + rng.randrange(100_000),
        "ship_type_id": rng.randrange(580, 90_000),
        "position_x": rng.randrange(2000),
        "position_y": rng.randrange(2000),
        "online": True,
    }
    envelope = {
        "id": ulid,
        "type": type_,
        "map_id": "0b8f2c61-5c1e-4f0e-9a55-2d4c1f0e8a77",
        "timestamp": "2026-11-27T12:00:00.123456Z",
        "payload": payload,
    }
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (
        ulid.encode(),
        type_.encode(),
        orjson.dumps(envelope),
    )


def make_stream(events: int = EVENTS) -> bytes:
    rng = random.Random(SEED)
    parts = []
    for index in range(events):
        parts.append(_event(rng, index))
        if index % 50 == 0:
            parts.append(b": keepalive\n\n")
    return b"".join(parts)


def chunked(stream: bytes, size: int = CHUNK_BYTES) -> list[bytes]:
    return [stream[start : start + size] for start in range(0, len(stream), size)]


def parse_with_parser(chunks: list[bytes]) -> int:
    parser = SseParser()
    count = 0
    for chunk in chunks:
        count += sum(1 for item in parser.feed(chunk) if isinstance(item, SseEvent))
    return count


def split_baseline(chunks: list[bytes]) -> int:
    buffer = b""
    count = 0
    for chunk in chunks:
        blocks = (buffer + chunk).split(b"\n\n")
        buffer = blocks.pop()
        count += sum(1 for block in blocks if not block.startswith(b":"))
    return count


def best_time(function: Callable[[list[bytes]], int], chunks: list[bytes]) -> tuple[float, int]:
    best = float("inf")
    count = 0
    for _ in range(ROUNDS):
        start = time.perf_counter()
        count = function(chunks)
        best = min(best, time.perf_counter() - start)
    return best, count


def main() -> None:
    stream = make_stream()
    chunks = chunked(stream)
    mean_event = len(stream) / EVENTS
    parser_s, parser_events = best_time(parse_with_parser, chunks)
    baseline_s, baseline_events = best_time(split_baseline, chunks)
    if parser_events != EVENTS or baseline_events != EVENTS:
        msg = f"counted {parser_events} and {baseline_events} events, expected {EVENTS}"
        raise RuntimeError(msg)
    megabytes = len(stream) / 1e6
    print(f"stream: {EVENTS} events, {mean_event:.0f} B each, {megabytes:.1f} MB, 4 KB chunks")
    print(
        f"SseParser:      {EVENTS / parser_s:12,.0f} events/s  {megabytes / parser_s:7.1f} MB/s"
        f"  {parser_s / EVENTS * 1e6:6.2f} us/event"
    )
    print(
        f"bytes.split:    {EVENTS / baseline_s:12,.0f} events/s  {megabytes / baseline_s:7.1f} MB/s"
        f"  {baseline_s / EVENTS * 1e6:6.2f} us/event"
    )
    print(f"ratio: the parser takes {parser_s / baseline_s:.1f}x the time of bytes.split")


if __name__ == "__main__":
    main()
