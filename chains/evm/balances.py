"""Native and ERC-20 balances of many wallets, read through Multicall3."""

from __future__ import annotations

from collections.abc import Sequence

from chains.base import Address, LineIssue, TokenBalance
from chains.evm.abi import BALANCE_OF, GET_ETH_BALANCE, encode_address_call
from chains.evm.address import EvmAddressError, address_bytes
from chains.evm.multicall import Call3, CallResult
from chains.evm.plan import SnapshotParts, describe_failure
from chains.evm.spec import EvmToken


class BalanceSection:
    """One line per (wallet, token): `getEthBalance` on Multicall3 for the native coin,
    `balanceOf` on the token contract otherwise. A line whose call fails becomes a LineIssue."""

    def __init__(
        self,
        wallets: Sequence[Address],
        tokens: Sequence[EvmToken],
        multicall_address: str,
        parts: SnapshotParts,
    ) -> None:
        multicall = address_bytes(multicall_address)
        token_targets = [
            (token, multicall if token.address is None else address_bytes(token.address))
            for token in tokens
        ]
        self._lines: list[tuple[Address, EvmToken]] = []
        calls: list[Call3] = []
        for wallet in wallets:
            try:
                wallet20 = address_bytes(wallet)
            except EvmAddressError as exc:
                parts.issues.append(LineIssue(subject=wallet, message=str(exc)))
                continue
            for token, target in token_targets:
                fn = GET_ETH_BALANCE if token.address is None else BALANCE_OF
                calls.append(Call3(target, encode_address_call(fn, wallet20), True))
                self._lines.append((wallet, token))
        self._calls = calls

    @property
    def calls(self) -> Sequence[Call3]:
        return self._calls

    def collect(self, results: Sequence[CallResult], parts: SnapshotParts) -> None:
        balances = parts.balances
        from_bytes = int.from_bytes
        for (wallet, token), (success, data) in zip(self._lines, results, strict=True):
            if success and len(data) == 32:
                balances.append(
                    TokenBalance(
                        account=wallet,
                        asset=token.asset,
                        amount_raw=from_bytes(data, "big"),
                        decimals=token.decimals,
                        token_address=token.address,
                    )
                )
                continue
            where = "getEthBalance" if token.address is None else f"balanceOf on {token.address}"
            parts.issues.append(
                LineIssue(
                    subject=wallet,
                    message=f"{token.asset} balance skipped: {where}: "
                    f"{describe_failure(CallResult(success, data))}",
                )
            )
