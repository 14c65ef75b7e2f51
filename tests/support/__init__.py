"""What the tests share, one module per concern.

- ``waiting``: wait for a condition with a deadline (never sleep to synchronise).
- ``process``: run the real program (``python run.py``) as a subprocess.
- ``fault_world``: the fault-injection suite's world (the program against loopback servers).
- ``discord``: the Discord sender's retry loop driven by a manual clock.
- ``metrics_tree``: a small running tree (metrics, web and stand-ins) for the web tests.
- ``notifier``: tracking + notifier trees, their config, events and ledger readers.
- ``pipeline``: the real journal/dedup/flow/router pipeline with recording handlers.
- ``source_neighbours``: stand-in journal and tracking actors around a source actor.
- ``phoenix``: Phoenix frames and clients for the wanderer-kills protocol tests.
- ``cards``: realistic killmails, map events and static info for the card tests.
- ``sim_map``: a raw SSE client and parser for the simulated map server.
- ``kills_probe``: a raw Phoenix client for the simulated wanderer-kills server.
- ``journal_sigkill_writer``, ``notifier_sigkill_child``: child programs that a test kills.
"""
