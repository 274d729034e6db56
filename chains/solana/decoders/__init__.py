"""Pure decoders of Solana account bytes: no I/O, each raises `AccountDecodeError` on bad data."""

from __future__ import annotations


class AccountDecodeError(ValueError):
    """The bytes are not the account type the decoder expects (size, discriminator, tag)."""
