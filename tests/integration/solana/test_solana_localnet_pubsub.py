"""The localnet's RPC PubSub websocket on the wire: a real SPL `TransferChecked` processed by
LiteSVM is notified as Solana's `accountNotification` / `programNotification`, at the
subscription's commitment, to the subscriptions whose account or filters it matches."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from solders.pubkey import Pubkey
from websockets.asyncio.client import ClientConnection, connect

from chains.solana.localnet import LocalSolana, keypair_from_seed
from chains.solana.spec import SPL_TOKEN_PROGRAM

ALICE = keypair_from_seed("pubsub-test:alice")
BOB = keypair_from_seed("pubsub-test:bob")
CAROL = keypair_from_seed("pubsub-test:carol")
UI_ACCOUNT_KEYS = {"data", "executable", "lamports", "owner", "rentEpoch", "space"}


@pytest.fixture
def chain() -> Iterator[LocalSolana]:
    with LocalSolana(pubsub_port=0) as local:
        yield local


@pytest.fixture
async def socket(chain: LocalSolana) -> AsyncIterator[ClientConnection]:
    assert chain.ws_url is not None
    async with connect(chain.ws_url) as ws:
        yield ws


class Wire:
    """Requests and the frames that answer them, in order, on one socket."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, params: list[Any]) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send(
            json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        )
        reply: dict[str, Any] = json.loads(await self.ws.recv())
        assert reply["id"] == self.next_id, reply
        return reply

    async def subscribe(self, method: str, params: list[Any]) -> int:
        reply = await self.call(method, params)
        assert set(reply) == {"jsonrpc", "result", "id"} and reply["jsonrpc"] == "2.0", reply
        assert isinstance(reply["result"], int)
        return int(reply["result"])

    async def notification(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await self.ws.recv())
        return message


def _amount(ui_account: dict[str, Any]) -> int:
    data = base64.b64decode(ui_account["data"][0])
    return int(struct.unpack_from("<Q", data, 64)[0])


def _world(chain: LocalSolana) -> tuple[Pubkey, Pubkey]:
    mint = chain.create_mint(6, SPL_TOKEN_PROGRAM, seed="pubsub-test:usdc")
    alice_ata = chain.mint_to(ALICE.pubkey(), mint, 1_000)
    chain.finalize()
    return mint, alice_ata


async def test_account_subscribe_notifies_a_real_transfer_at_each_commitment(
    chain: LocalSolana, socket: ClientConnection
) -> None:
    mint, alice_ata = _world(chain)
    wire = Wire(socket)
    processed = await wire.subscribe(
        "accountSubscribe", [str(alice_ata), {"encoding": "base64", "commitment": "processed"}]
    )
    finalized = await wire.subscribe(
        "accountSubscribe", [str(alice_ata), {"encoding": "base64", "commitment": "finalized"}]
    )
    chain.transfer_tokens(ALICE, BOB.pubkey(), mint, 250)
    written_at = chain.slot

    first = await wire.notification()
    assert set(first) == {"jsonrpc", "method", "params"}
    assert first["jsonrpc"] == "2.0" and first["method"] == "accountNotification"
    assert set(first["params"]) == {"result", "subscription"}
    assert first["params"]["subscription"] == processed
    result = first["params"]["result"]
    assert set(result) == {"context", "value"} and result["context"] == {"slot": written_at}
    value = result["value"]
    assert set(value) == UI_ACCOUNT_KEYS
    assert value["owner"] == SPL_TOKEN_PROGRAM and value["space"] == 165
    assert value["data"][1] == "base64" and value["executable"] is False
    assert _amount(value) == 750

    chain.finalize()  # the transfer's slot is now below the finalized slot
    second = await wire.notification()
    assert second["method"] == "accountNotification"
    assert second["params"]["subscription"] == finalized
    assert second["params"]["result"]["context"]["slot"] == chain.ledger.slot_for("finalized")
    assert second["params"]["result"]["context"]["slot"] >= written_at
    assert _amount(second["params"]["result"]["value"]) == 750


async def test_program_subscribe_notifies_the_token_accounts_its_owner_filter_matches(
    chain: LocalSolana, socket: ClientConnection
) -> None:
    mint, _alice_ata = _world(chain)
    wire = Wire(socket)

    def owner_filter(owner: Pubkey) -> list[Any]:
        return [
            SPL_TOKEN_PROGRAM,
            {
                "encoding": "base64",
                "commitment": "finalized",
                "filters": [{"dataSize": 165}, {"memcmp": {"offset": 32, "bytes": str(owner)}}],
            },
        ]

    bob_sub = await wire.subscribe("programSubscribe", owner_filter(BOB.pubkey()))
    await wire.subscribe("programSubscribe", owner_filter(CAROL.pubkey()))
    # A sentinel: CAROL's wallet account, changed after the transfer. Frames come in order,
    # so what arrives before it is all the transfer caused.
    sentinel = await wire.subscribe(
        "accountSubscribe", [str(CAROL.pubkey()), {"encoding": "base64"}]
    )
    bob_ata = chain.transfer_tokens(ALICE, BOB.pubkey(), mint, 250)
    chain.finalize()
    chain.airdrop(CAROL.pubkey(), 5 * 10**9)
    chain.finalize()

    frames = [await wire.notification(), await wire.notification()]
    assert [f["params"]["subscription"] for f in frames] == [bob_sub, sentinel]
    note = frames[0]
    assert note["method"] == "programNotification"
    value = note["params"]["result"]["value"]
    assert set(value) == {"pubkey", "account"} and value["pubkey"] == str(bob_ata)
    assert set(value["account"]) == UI_ACCOUNT_KEYS
    assert _amount(value["account"]) == 250
    data = base64.b64decode(value["account"]["data"][0])
    assert Pubkey.from_bytes(data[32:64]) == BOB.pubkey()
    assert frames[1]["params"]["result"]["value"]["lamports"] == 5 * 10**9


async def test_unsubscribe_and_bad_requests_answer_as_solana_does(
    chain: LocalSolana, socket: ClientConnection
) -> None:
    wire = Wire(socket)
    subscription = await wire.subscribe("accountSubscribe", [str(ALICE.pubkey())])
    assert chain.pubsub is not None and chain.pubsub.active_subscriptions() == {"account": 1}
    assert (await wire.call("accountUnsubscribe", [subscription]))["result"] is True
    assert (await wire.call("accountUnsubscribe", [subscription]))["result"] is False
    assert chain.pubsub.active_subscriptions() == {}
    bad_key = await wire.call("accountSubscribe", ["not-a-key"])
    assert bad_key["error"]["code"] == -32602
    unknown = await wire.call("slotsUpdatesSubscribe", [])
    assert unknown["error"]["code"] == -32601
    too_many = await wire.call(
        "programSubscribe", [SPL_TOKEN_PROGRAM, {"filters": [{"dataSize": 165}] * 5}]
    )
    assert too_many["error"]["code"] == -32602


def test_without_a_pubsub_port_the_localnet_has_no_websocket() -> None:
    with LocalSolana() as local:
        assert local.ws_url is None and local.pubsub is None
