"""What the repositories refuse, each with a one-line message."""

from __future__ import annotations

from aggregator.errors import UserInputError


class UserExists(UserInputError):
    """A user with that name already exists."""


class UnknownUser(UserInputError):
    """No user with that id or name."""


class WalletTaken(UserInputError):
    """The wallet is already linked to another user."""
