"""Post one Discord message in one HTTP attempt, and decide what to do next.

:class:`DiscordSender` makes exactly one request per :meth:`DiscordSender.send`
and classifies the outcome as a frozen :data:`SendResult`; the caller (the
notifier, from its worker threads) owns retries and the ledger, guided by the
pure :class:`RetryPlan`.

One sender serves every route of ``[[routes]]`` (:class:`Destination`, one per
route; the implicit route ``discord`` without any): they share the bot token,
the connection pool and the rate limits (the global limit is the bot's, each
channel or webhook has its own bucket). Bot mode posts to
``{api_base}/channels/{channel_id}/messages`` (the route's channel, else
``[notify.discord] channel_id``) with the caller's ``nonce`` and
``"enforce_nonce": true``: Discord answers a repeat of
the nonce with the message it already created, so retrying a timeout or a
reset with the same nonce cannot post twice. Webhook mode posts to
``{webhook_url}?wait=true`` (the route's webhook, else ``[notify.discord]
webhook_url``; so success is known) and has no such guarantee: a
retry after a request that created the message but lost its answer posts it
again.

Rate limits are respected before sending (a send that would exceed them is not
made and returns :class:`Deferred`) and learned from every answer.

Secrets (the bot token, the webhook URL, its id and token) never appear in a
result, an exception message or a log line: they are masked as ``***``,
including in the lines urllib3 logs at DEBUG while a sender is open.

Where things live:

- :mod:`~actors.discord_http.sender`: :class:`DiscordSender`, the request and
  its classification;
- :mod:`~actors.discord_http.retry`: the results, the decisions and
  :class:`RetryPlan`;
- :mod:`~actors.discord_http.destinations`: each route's URL and rate-limit
  route, and :class:`SecretMask`;
- :mod:`~actors.discord_http.answers`: reading an answer within bounds.
"""

from actors.discord_http.answers import (
    MAX_ANSWER_BYTES,
    MAX_ERROR_DEPTH,
    MAX_ERROR_NODES,
    MAX_REASON,
)
from actors.discord_http.destinations import Destination, SecretMask
from actors.discord_http.retry import (
    Decision,
    Deferred,
    Done,
    Fatal,
    GiveUp,
    Invalid,
    Retryable,
    RetryAfter,
    RetryPlan,
    RetryState,
    SendAgain,
    SendResult,
    Sent,
    StopSink,
)
from actors.discord_http.sender import (
    HTTP_LOGGERS,
    MAX_NONCE,
    USER_AGENT,
    DiscordSender,
    SenderStatistics,
)

__all__ = [
    "HTTP_LOGGERS",
    "MAX_ANSWER_BYTES",
    "MAX_ERROR_DEPTH",
    "MAX_ERROR_NODES",
    "MAX_NONCE",
    "MAX_REASON",
    "USER_AGENT",
    "Decision",
    "Deferred",
    "Destination",
    "DiscordSender",
    "Done",
    "Fatal",
    "GiveUp",
    "Invalid",
    "RetryAfter",
    "RetryPlan",
    "RetryState",
    "Retryable",
    "SecretMask",
    "SendAgain",
    "SendResult",
    "SenderStatistics",
    "Sent",
    "StopSink",
]
