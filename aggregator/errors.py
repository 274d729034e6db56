"""Errors the service reports as one line. Anything else is a bug and keeps its traceback."""

from __future__ import annotations


class XmarginError(Exception):
    """A runtime failure with a clear message (database unreachable, every RPC down)."""


class UserInputError(XmarginError):
    """Bad input from the user: an unknown user or chain, a taken wallet, a bad address."""
