"""Operator commands over the store: users, wallets, reading statuses."""

from __future__ import annotations

import json
from datetime import UTC
from decimal import Decimal
from typing import Any

from aggregator.addresses import caip10, normalize_address
from aggregator.bootstrap import open_services
from aggregator.config import LoadedConfig
from aggregator.errors import UserInputError
from aggregator.publish.documents import published_status
from aggregator.store.accounts import users as user_repo
from aggregator.store.accounts.users import UserRow
from aggregator.store.errors import UnknownUser

# The ownership proof of a link an operator made (`xmargin wallets link`): no signature, the
# operator vouches for it. Front ends link only with a signed proof (POST /v1/users/{user}/wallets).
OPERATOR_PROOF = json.dumps({"method": "operator"}, sort_keys=True, separators=(",", ":"))


async def _user(session: Any, name_or_id: str) -> UserRow:
    user = await user_repo.get_user(
        session, int(name_or_id) if name_or_id.isdigit() else name_or_id
    )
    if user is None:
        raise UnknownUser(f"no user {name_or_id!r} (add it with `xmargin users add`)")
    return user


async def add_user(config: LoadedConfig, name: str) -> int:
    """Create a user; its id. May raise: UserExists, UserInputError (bad name)."""
    if not name.strip() or name.isdigit():
        raise UserInputError(f"user name {name!r}: must be non-empty and not all digits")
    async with open_services(config, with_adapters=False) as services:
        async with services.database.session() as session:
            return await user_repo.add_user(session, name)


async def list_users(config: LoadedConfig) -> list[str]:
    async with open_services(config, with_adapters=False) as services:
        async with services.database.session() as session:
            users = await user_repo.list_users(session)
            wallets = await user_repo.wallets_by_chain(session)
    lines = []
    for user in users:
        accounts = [
            caip10(config.chains[chain].caip2, w.address) if chain in config.chains else w.address
            for chain, rows in wallets.items()
            for w in rows
            if w.user_id == user.id
        ]
        lines.append(f"{user.id}\t{user.name}\t{' '.join(accounts) or '-'}")
    return lines


async def link_wallet(config: LoadedConfig, user: str, chain: str, address: str) -> str:
    """Link a wallet after validating the chain and the address, recorded with the `operator`
    proof; its CAIP-10 id.

    May raise: UserInputError (unknown chain, bad address, unknown user, wallet taken).
    """
    chain_config = config.chains.get(chain)
    if chain_config is None:
        known = ", ".join(sorted(config.chains)) or "none"
        raise UserInputError(f"unknown chain {chain!r} in {config.path} (known: {known})")
    canonical = normalize_address(chain_config.family, address, require_checksum=False)
    async with open_services(config, with_adapters=False) as services:
        async with services.database.session() as session:
            row = await _user(session, user)
            await user_repo.link_wallet(session, row.id, chain, canonical, OPERATOR_PROOF)
    return caip10(chain_config.caip2, canonical)


async def user_status(
    config: LoadedConfig, user: str, *, risk_input: bool = False
) -> dict[str, Any]:
    """The latest published status document of a user; with `risk_input`, instead, the exact
    `xmargin risk evaluate` input it was valued from.

    May raise: UserInputError (unknown user, nothing published yet).
    """
    async with open_services(config, with_adapters=False) as services:
        async with services.database.session() as session:
            row = await _user(session, user)
            record = await published_status(session, config, row.id)
    if record is None:
        raise UserInputError(f"no status published for {user!r} yet (run `xmargin cycle`)")
    if risk_input:
        portfolio = record.inputs.get("portfolio")
        if not isinstance(portfolio, dict):
            raise UserInputError(f"the inputs of {user!r}'s status were pruned")
        return portfolio
    return record.document


async def users_by_status(config: LoadedConfig, statuses: list[str] | None) -> list[dict[str, Any]]:
    """With `statuses`: the users whose latest status is one of them, nearest to liquidation
    first (lowest health factor, then lowest maintenance health in USD), as JSON-ready dicts
    (money as decimal strings). Without: every user and their accounts (CAIP-10)."""
    from aggregator.store.published.attention import accounts_needing_attention

    async with open_services(config, with_adapters=False) as services:
        async with services.database.session() as session:
            if statuses is None:
                users = await user_repo.list_users(session)
                wallets = await user_repo.wallets_by_chain(session)
                return [
                    {
                        "user_id": user.id,
                        "user": user.name,
                        "accounts": [
                            caip10(config.chains[chain].caip2, w.address)
                            if chain in config.chains
                            else w.address
                            for chain, rows in wallets.items()
                            for w in rows
                            if w.user_id == user.id
                        ],
                    }
                    for user in users
                ]
            rows = await accounts_needing_attention(session, statuses)

    def text(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return [
        {
            "user_id": row.user_id,
            "user": row.user_name,
            "status": row.status,
            "stale": row.stale,
            "stale_chains": list(row.stale_chains),
            "health_factor": text(row.health_factor),
            "health_maint_usd": text(row.health_maint_usd),
            "equity_usd": text(row.equity_usd),
            "requirement_maint_usd": text(row.requirement_maint_usd),
            "free_collateral_usd": text(row.free_collateral_usd),
            "as_of": row.as_of.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "age_seconds": round(row.age_seconds, 1),
        }
        for row in rows
    ]


def attention_lines(rows: list[dict[str, Any]]) -> list[str]:
    """`users list --status ...` as tab-separated lines with a header."""
    if rows and "status" not in rows[0]:
        return [f"{r['user_id']}\t{r['user']}\t{' '.join(r['accounts']) or '-'}" for r in rows]
    header = "id\tuser\tstatus\thealth_factor\thealth_maint_usd\tequity_usd\tstale"
    return [header] + [
        f"{r['user_id']}\t{r['user']}\t{r['status']}\t{r['health_factor'] or '-'}\t"
        f"{r['health_maint_usd']}\t{r['equity_usd']}\t{','.join(r['stale_chains']) or '-'}"
        for r in rows
    ]
