"""Fault injection on the wanderer-kills WebSocket, against the real program.

Kills published while the socket is down come back only through the
server's preload after the rejoin, which holds the newest
:data:`~tests.support.fault_world.PRELOAD_PER_SYSTEM` kills of each *subscribed
system*: these tests publish at most that many per system between two joins,
and, around an outage, only kills in tracked systems: a kill that matches only
a tracked character is in no preload, so the tests wait for those to be
notified before they break the connection (see the suite's report).
"""

from __future__ import annotations

import threading
from pathlib import Path

from realtime.event import KILLS_SOURCE
from tests.support.fault_world import fault_world
from tests.support.waiting import wait_for


def test_websocket_dropped_abruptly_again_and_again_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    with fault_world(tmp_path, seed=11) as world:
        for cycle in range(5):
            joins = world.kills.statistics().joins_ok
            world.wait_notified(world.publish_mix(7))
            world.publish_map_events(2, first_system=31000300 + 10 * cycle)
            # frames are in flight when the sockets are aborted (RST, no close frame)
            world.publish_recoverable(1)
            assert world.kills.drop_all() >= 1
            world.publish_recoverable(1)
            world.wait_rejoined(joins)
        world.publish_mix(7)
        world.wait_delivered()
        world.assert_exactly_once()
        assert world.kills.statistics().sockets_dropped >= 5


def test_a_half_open_websocket_is_abandoned_and_its_lost_kills_come_back_with_the_preload(
    tmp_path: Path,
) -> None:
    with fault_world(tmp_path, seed=12) as world:
        world.wait_notified(world.publish_mix(7))
        world.publish_recoverable(1)
        sockets = world.kills.statistics().sockets_open
        world.kills.set_half_open(True)
        # the server now discards every push: these exist only in its history
        world.publish_recoverable(1)
        world.publish_map_events(3, first_system=31000400)
        # heartbeats go unanswered: the program gives each socket up and dials again
        # (the silent server never completes the new handshakes, nor sees the old sockets go);
        # both connections (kills and kills:characters) must have dialled again, since a
        # characters-only join has no preload to bring back what it missed
        wait_for(
            lambda: world.kills.statistics().sockets_open >= sockets + 2,
            timeout_s=10,
            what="new connection attempts after the half-open ones",
        )
        assert world.kills.statistics().frames_withheld > 0
        world.kills.set_half_open(False)
        world.wait_connected()
        world.publish_mix(7)
        world.wait_delivered()
        world.assert_exactly_once()


def test_a_kills_server_restart_on_the_same_port_brings_outage_kills_back_by_preload(
    tmp_path: Path,
) -> None:
    with fault_world(tmp_path, seed=13) as world:
        world.wait_notified(world.publish_mix(7))
        world.publish_recoverable(1)
        restarts = world.kills.statistics().restarts
        restart = threading.Thread(target=world.kills.restart, kwargs={"down_s": 1.0})
        restart.start()
        try:
            wait_for(
                lambda: (
                    not world.kills.statistics().listening
                    and world.kills.statistics().connections_current == 0
                ),
                timeout_s=10,
                what="the server down, every connection closed",
            )
            # published while nobody can connect: kept in the server's history only
            outage = world.publish_recoverable(1)
            world.publish_map_events(3, first_system=31000500)
        finally:
            restart.join(15)
        assert world.kills.statistics().restarts == restarts + 1
        world.wait_connected()
        world.publish_mix(7)
        world.wait_delivered()
        world.assert_exactly_once()
        # the outage's kills came back, as they only could, with the rejoin's preload
        journaled = world.journal_events(KILLS_SOURCE)
        outage_ids = {str(kill["killmail_id"]) for kill in outage}
        live = {event["id"] for event in journaled if event["data"].get("preload") is not True}
        preloaded = {event["id"] for event in journaled if event["data"].get("preload") is True}
        assert outage_ids <= preloaded
        assert not outage_ids & live
