"""Compile the devnet's Vyper contracts offline, cached per process and on disk.

The cache key is the source text plus the compiler version, so an edited contract or another
Vyper release recompiles; the disk cache lives under `<repo>/.xmargin/cache/vyper/`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CONTRACTS_DIR = Path(__file__).with_name("contracts")


@dataclass(frozen=True, slots=True)
class CompiledContract:
    name: str
    bytecode: bytes  # init code
    abi: tuple[dict[str, Any], ...]


def _cache_dir() -> Path | None:
    override = os.environ.get("XMARGIN_CACHE_DIR")
    if override:
        return Path(override) / "vyper"
    for parent in Path(__file__).resolve().parents:
        if (parent / "pyproject.toml").is_file():
            return parent / ".xmargin" / "cache" / "vyper"
    return None


@cache
def compile_contract(name: str) -> CompiledContract:
    """Compile `contracts/<name>.vy` (or load it from the disk cache).

    May raise: FileNotFoundError, vyper.exceptions.VyperException.
    """
    import vyper  # imported lazily: the compiler is a dev-only dependency

    source = (CONTRACTS_DIR / f"{name}.vy").read_text()
    key = hashlib.sha256(f"{vyper.__version__}\n{source}".encode()).hexdigest()[:24]
    directory = _cache_dir()
    cached = directory / f"{name}-{key}.json" if directory else None
    if cached is not None and cached.is_file():
        stored = json.loads(cached.read_text())
        return CompiledContract(name, bytes.fromhex(stored["bytecode"]), tuple(stored["abi"]))
    output = vyper.compile_code(source, output_formats=["bytecode", "abi"])
    bytecode = bytes.fromhex(str(output["bytecode"]).removeprefix("0x"))
    abi = tuple(output["abi"])
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            temporary = cached.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps({"bytecode": bytecode.hex(), "abi": list(abi)}))
            temporary.replace(cached)
        except OSError:
            pass  # a read-only checkout still works, it just compiles every run
    return CompiledContract(name, bytecode, abi)
