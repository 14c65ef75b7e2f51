"""OTP-style supervision for pykka thread actors; knows nothing of the domain."""

from supervision._backoff import Backoff

__all__ = ["Backoff"]
