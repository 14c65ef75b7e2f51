"""What deserves a notification: pure decisions over events and the tracked state.

:func:`kill_notification` decides about a killmail (from wanderer-kills or a
map's ``map_kill``), :func:`map_notification` about map events (a system or a
character added to a map, a character removed, a rally point);
:func:`alert_notification` and :func:`status_notification` make the
program's own notices. Each returns a :class:`Notification` carrying everything
a renderer needs, so rendering never goes back to the event or the tracked
state. The tracked state is read through :class:`~realtime.tracking.TrackedLookup`
(the notifier decides against the immutable snapshot tracking sent it), a
system's static info through :class:`~realtime.static_info.StaticInfoLookup`.

A notification's :attr:`Notification.key` is stable: the same fact gives the
same key on every replay, so the notifier's ledger (keyed by it plus where it
goes) is what prevents a second post. There is deliberately no start-up grace
period and no short dedup window here: a kill replayed by the server's preload
is decided exactly like a live one, and the ledger refuses it if it was
already claimed. (The Elixir notifier's 30-minute dedup window against a
60-minute max kill age let preload replays notify twice.)
"""

from realtime.notifications.kills import HIGH_PRIORITY_VALUE_ISK, kill_notification
from realtime.notifications.map import map_notification
from realtime.notifications.model import (
    AlertDetails,
    AlertState,
    CharacterDetails,
    Decision,
    Details,
    KillDetails,
    KillRole,
    Notification,
    NotificationKind,
    Pilot,
    RallyPointDetails,
    SkipReason,
    StatusDetails,
    StatusReason,
    SystemDetails,
)
from realtime.notifications.operations import (
    alert_notification,
    format_duration,
    status_notification,
)
from realtime.static_info import WORMHOLE_SYSTEM_IDS

__all__ = [
    "HIGH_PRIORITY_VALUE_ISK",
    "WORMHOLE_SYSTEM_IDS",
    "AlertDetails",
    "AlertState",
    "CharacterDetails",
    "Decision",
    "Details",
    "KillDetails",
    "KillRole",
    "Notification",
    "NotificationKind",
    "Pilot",
    "RallyPointDetails",
    "SkipReason",
    "StatusDetails",
    "StatusReason",
    "SystemDetails",
    "alert_notification",
    "format_duration",
    "kill_notification",
    "map_notification",
    "status_notification",
]
