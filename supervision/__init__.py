"""OTP-style supervision for pykka thread actors; knows nothing of the domain.

- :class:`SupervisedActor`: the base class of every supervised actor (bounded
  mailbox, timers, exits reported to its supervisor, OTP crash semantics).
- :class:`ChildSpec`, :class:`SupervisorSpec`, :class:`Restart`,
  :class:`Strategy`: what to run and how to restart it.
- :class:`SupervisionTree`: starts a root supervisor, snapshots and stops it.
- :class:`Registry`: stable names resolved to the current actor at send time.
- :class:`BoundedMailbox`, :class:`MailboxSpec`, :class:`OverflowPolicy`:
  bounded mailboxes whose control lane is never blocked.
- :class:`Backoff`: capped exponential backoff with jitter.
"""

from supervision._actor import (
    ActorContext,
    Crash,
    CrashedAfterAskError,
    ExitReason,
    GetStatus,
    InjectedCrashError,
    Ping,
    SupervisedActor,
)
from supervision._backoff import Backoff
from supervision._mailbox import (
    BoundedMailbox,
    Control,
    MailboxFullError,
    MailboxSpec,
    MailboxStatistics,
    OverflowPolicy,
)
from supervision._registry import ActorUnavailableError, Registry
from supervision._root import SupervisionTree, TreeStartError
from supervision._supervisor import (
    ChildSpec,
    Restart,
    RestartIntensityError,
    StartFailedError,
    Strategy,
    Supervisor,
    SupervisorSpec,
)
from supervision._timers import TimerHandle, Timers
from supervision._tree import TreeNode, render_tree

__all__ = [
    "ActorContext",
    "ActorUnavailableError",
    "Backoff",
    "BoundedMailbox",
    "ChildSpec",
    "Control",
    "Crash",
    "CrashedAfterAskError",
    "ExitReason",
    "GetStatus",
    "InjectedCrashError",
    "MailboxFullError",
    "MailboxSpec",
    "MailboxStatistics",
    "OverflowPolicy",
    "Ping",
    "Registry",
    "Restart",
    "RestartIntensityError",
    "StartFailedError",
    "Strategy",
    "SupervisedActor",
    "SupervisionTree",
    "Supervisor",
    "SupervisorSpec",
    "TimerHandle",
    "Timers",
    "TreeNode",
    "TreeStartError",
    "render_tree",
]
