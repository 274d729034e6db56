"""The one error of the auth package: which field was refused, why (a short code), and a
message fit for a 4xx body. It never carries a secret."""

from __future__ import annotations

from aggregator.errors import UserInputError


class AuthError(UserInputError):
    """A proof, token or key was refused.

    `field` names the input at fault (`signature`, `nonce`, `expiration_time`, `token`, ...);
    `reason` is a short machine code (`malformed`, `wrong_signer`, `expired`, ...).
    """

    def __init__(self, field: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}(field={self.field!r}, reason={self.reason!r})"
