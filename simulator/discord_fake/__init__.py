"""Discord on loopback: channel messages, webhooks, rate limits and faults.

A real HTTP/1.1 server (stdlib ``ThreadingHTTPServer`` in a thread it owns)
that answers the two ways to post a message the way Discord does
(docs/protocols.md, "Discord"):

- ``POST /api/v10/channels/{channel_id}/messages`` with ``Authorization: Bot
  TOKEN`` (401 otherwise). A ``nonce`` with ``"enforce_nonce": true`` seen
  again in the same channel within ``nonce_window_s`` answers the message it
  created the first time (200, same id) instead of creating another.
- ``POST /api/webhooks/{id}/{token}`` (also under ``/api/v10``): 200 with the
  message when ``?wait=true``, else 204. No idempotency. An unknown or deleted
  webhook is 404 ``Unknown Webhook`` (10015); a wrong token is 401 (50027).

Reading, as a setup check does without posting: ``GET /api/v10/channels/{id}``
(bot token; 403 ``Missing Access`` 50001 or 404 ``Unknown Channel`` 10003 for a
channel set so with :meth:`DiscordFake.set_channel_access`, which posting there
answers too) and ``GET`` of a webhook URL (its object; 404/401 as above).

Bodies are checked against Discord's size limits (400, code 50035 with the
nested ``errors`` object Discord gives; 50006 for an empty message). Every
answer past authentication carries rate-limit headers of a per-route,
per-channel (or per-webhook) bucket of ``bucket_limit`` requests per
``bucket_window_s``; a client beyond it, or beyond ``global_per_s`` requests in
a second, gets a 429 with ``retry_after``, ``global``, ``Retry-After`` and
``X-RateLimit-Scope``.

Faults are armed for the next N message posts, thread-safely: 429 storms, 5xx
answers, connections closed without an answer (before or after creating the
message) and answers held back after the message was created. Inspection:
:meth:`DiscordFake.messages` (what was really created, in order, with whom
it pinged: ``mention_everyone`` and ``mention_roles``, see :func:`pings`),
:meth:`DiscordFake.requests` and :meth:`DiscordFake.statistics`.

Time comes from ``clock`` (epoch seconds, default ``time.time``) so that tests
can drive the rate-limit windows; the held-back answers wait in real time.

Where things live:

- :mod:`~simulator.discord_fake.fake`: :class:`DiscordFake`, the control API
  (lifecycle, webhooks, channel access, faults, inspection);
- :mod:`~simulator.discord_fake.api`: what the fake holds and how it answers
  each request (routes, nonces, faults, message creation, the request log);
- :mod:`~simulator.discord_fake.ratelimits`: the buckets and the global bound;
- :mod:`~simulator.discord_fake.wire`: body checks against Discord's limits,
  pings, and the answers' shapes;
- :mod:`~simulator.discord_fake.http`: the HTTP/1.1 server and its handler.
"""

from simulator.discord_fake.api import ChannelAccess, LoggedRequest
from simulator.discord_fake.fake import DiscordFake, DiscordFakeStatistics
from simulator.discord_fake.ratelimits import bucket_hash
from simulator.discord_fake.wire import form_errors, pings

__all__ = [
    "ChannelAccess",
    "DiscordFake",
    "DiscordFakeStatistics",
    "LoggedRequest",
    "bucket_hash",
    "form_errors",
    "pings",
]
