"""The attestation signing key: loaded from the environment or a file, never shown."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from aggregator.auth.signing_key import (
    SECP256K1_ORDER,
    SigningKey,
    SigningKeyError,
    load_signing_key,
)

HEX_KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
ADDRESS = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"


def test_no_key_configured_is_none() -> None:
    assert load_signing_key({}) is None


@pytest.mark.parametrize("text", [HEX_KEY, "0x" + HEX_KEY, f"  {HEX_KEY}\n"])
def test_a_hex_key_from_the_environment_loads(text: str) -> None:
    key = load_signing_key({"XMARGIN_SIGNING_KEY": text})
    assert key is not None and key.address == ADDRESS


def test_a_key_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    path.write_text(HEX_KEY + "\n")
    key = load_signing_key({"XMARGIN_SIGNING_KEY_FILE": str(path)})
    assert key is not None and key.address == ADDRESS


def test_the_key_never_shows_in_repr_or_str() -> None:
    key = SigningKey(bytes.fromhex(HEX_KEY))
    assert repr(key) == str(key) == f"SigningKey(address={ADDRESS})"
    assert HEX_KEY not in repr(key)


def test_the_key_refuses_to_be_pickled() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(SigningKey(bytes.fromhex(HEX_KEY)))


@pytest.mark.parametrize(
    "text",
    [
        HEX_KEY[:-2],
        HEX_KEY + "00",
        "zz" + HEX_KEY[2:],
        "00" * 32,
        f"{SECP256K1_ORDER:064x}",
    ],
)
def test_malformed_keys_are_refused_without_showing_them(text: str) -> None:
    with pytest.raises(SigningKeyError) as caught:
        load_signing_key({"XMARGIN_SIGNING_KEY": text})
    assert str(caught.value).startswith("XMARGIN_SIGNING_KEY:")
    assert text not in str(caught.value)
    assert text[:16] not in str(caught.value)


def test_both_sources_set_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="not both"):
        load_signing_key(
            {"XMARGIN_SIGNING_KEY": HEX_KEY, "XMARGIN_SIGNING_KEY_FILE": str(tmp_path / "k")}
        )


def test_an_unreadable_key_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.key"
    with pytest.raises(SigningKeyError) as caught:
        load_signing_key({"XMARGIN_SIGNING_KEY_FILE": str(missing)})
    assert str(missing) in str(caught.value)
