"""The ``notifier`` actor: decide, claim in the ledger, answer, then deliver.

On :class:`~actors.protocol.Handle` (asked by the router with committed
events) it decides each event against the latest tracked view (the immutable
snapshot of the last :class:`~actors.protocol.TrackingChanged`) and the
configuration (``[filters] max_kill_age_s``, ``[notify.kills]``,
``[notify.map]``). For every notification and every configured sink it claims
``{notification key}@{sink}`` in the :class:`~realtime.ledger.Ledger`, with the
rendered body, in one transaction; only then does it answer. A key already in
the ledger (a redelivery, a preload replay after a reconnect, the same kill as
a map's ``map_kill``) is never claimed twice, so it is never posted twice.

Delivery, per sink:

- **console**: one readable line per notification on stdout (ANSI colour only
  when stdout is a terminal), written right after the claims (before the
  answer: the entries are already on disk) and marked sent at once.
- **discord**: a bounded :class:`SendQueue` (``[notify.discord] send_queue``)
  served by ``concurrency`` worker threads the actor owns, so one slow answer
  holds up one worker, and the actor never waits on HTTP. Each worker makes one
  attempt at a time through :class:`~actors.discord_http.DiscordSender`
  (rate limits learned and respected before sending) and follows
  :class:`~actors.discord_http.RetryPlan` (429s after their ``retry_after``,
  5xx, timeouts and resets with capped jittered backoff). An entry is marked
  sent only once Discord confirmed it; a 401, 403 or 404 stops the sink, logs
  an error, counts ``sink_stopped`` and shows in ``status()["error"]``, and
  leaves the unsent entries pending for the next start.

Messages may reach the channel out of claim order: several workers send at
once, an entry that backs off lets the next ones pass, and among the entries
due the most urgent (the event's flow priority) goes first, so that a critical
notification does not wait behind a preload's low ones while Discord is the
bottleneck. Entries beyond the send queue wait in the ledger in claim order.

In **bot** mode every attempt of an entry carries the entry's nonce with
``enforce_nonce``: a retry after a timeout, or after a crash (pending entries
are resumed at start with the same nonce and the stored body), returns the
message Discord already created instead of a second one, provided the retry
comes within Discord's nonce window (a few minutes): an entry resumed after a
longer outage may still be posted twice. In **webhook** mode
there is no nonce: delivery is at least once, and a retry after an answer that
was lost (a timeout, a reset after the message was created, a crash while a
request was in flight) posts the message again.

The send queue holds at most ``send_queue`` entries (waiting, backing off or
in flight). When it is full, claimed entries simply stay pending in the ledger,
which is the backlog on disk, and are moved into the queue as room appears.

Modules: :mod:`~actors.notifier.actor` (the actor and its child spec),
:mod:`~actors.notifier.settings`, :mod:`~actors.notifier.discord_delivery`
(starting the sink, offering new entries, refilling from the backlog),
:mod:`~actors.notifier.send_queue`, :mod:`~actors.notifier.discord_sink`
(workers, the shared ledger, outcome counters),
:mod:`~actors.notifier.console` and :mod:`~actors.notifier.view` (the tracked
view decisions read).
"""

from actors.notifier.actor import NotifierActor, child_spec
from actors.notifier.announcer import ProcessStart
from actors.notifier.console import ConsoleSink
from actors.notifier.discord_delivery import DISCORD
from actors.notifier.discord_sink import DiscordSink, Outcomes, SharedLedger
from actors.notifier.planner import CONSOLE
from actors.notifier.send_queue import Delivery, SendQueue, SendQueueStatistics
from actors.notifier.settings import NotifierSettings
from actors.notifier.view import TrackingUnavailableError

__all__ = [
    "CONSOLE",
    "DISCORD",
    "ConsoleSink",
    "Delivery",
    "DiscordSink",
    "NotifierActor",
    "NotifierSettings",
    "Outcomes",
    "ProcessStart",
    "SendQueue",
    "SendQueueStatistics",
    "SharedLedger",
    "TrackingUnavailableError",
    "child_spec",
]
