"""CAIP-2 chain ids and CAIP-10 account ids from requests, resolved against the config."""

from __future__ import annotations

import re

from aggregator.addresses import AddressError, normalize_address
from aggregator.api.errors import ApiError
from aggregator.config import LoadedConfig

# CAIP-2: namespace [-a-z0-9]{3,8}, reference [-_a-zA-Z0-9]{1,32}; CAIP-10 adds the address.
_CAIP2 = re.compile(r"^[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}$")
_CAIP10 = re.compile(r"^([-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}):([-.%a-zA-Z0-9]{1,128})$")


def chain_key_of(config: LoadedConfig, caip2: str, field: str) -> str:
    """The config key of the chain with CAIP-2 id `caip2`.

    May raise: ApiError (422 malformed id, 404 unknown chain), naming `field`.
    """
    if not _CAIP2.match(caip2):
        raise ApiError(422, "invalid", f"{caip2!r} is not a CAIP-2 chain id", field)
    for key, chain in config.chains.items():
        if chain.caip2 == caip2:
            return key
    raise ApiError(404, "not_found", f"no chain {caip2} is configured", field)


def parse_account(config: LoadedConfig, caip10: str, field: str) -> tuple[str, str]:
    """(chain key, canonical address) of a CAIP-10 account id. EVM addresses may be given in
    lower case; a mixed-case one must carry a valid EIP-55 checksum.

    May raise: ApiError (422 malformed id or address, 404 unknown chain), naming `field`.
    """
    match = _CAIP10.match(caip10)
    if match is None:
        raise ApiError(
            422,
            "invalid",
            f"{caip10[:200]!r} is not a CAIP-10 account id (namespace:reference:address)",
            field,
        )
    caip2, address = match.group(1), match.group(2)
    key = chain_key_of(config, caip2, field)
    try:
        canonical = normalize_address(config.chains[key].family, address, require_checksum=False)
    except AddressError as exc:
        raise ApiError(422, "invalid", str(exc), field) from None
    return key, canonical
