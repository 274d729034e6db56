"""The cyclic garbage collector paused while a large batch is read or valued.

Reading or valuing many accounts allocates millions of objects that hold no cycles (reference
counting frees them). With the collector on, its full collections walk every live object, so
the cost per account grows with the size of the batch (measured on one EVM snapshot: 1.41x per
wallet from 10k to 100k wallets with the collector on, 0.86x with it off; half of a publish
shard's Python time).

Pauses nest, also across tasks of one event loop: the collector comes back on when the last
pause open ends (and only if it was on when the first began). A pause may span awaits: the
other tasks of the process then run without cyclic collection meanwhile (their acyclic garbage
is still freed at once); cycles they leave wait for the pause to end.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_open = 0  # pauses open in this process
_resume = False  # whether the collector was on when the first of them began


@contextmanager
def collector_paused() -> Iterator[None]:
    """The collector off inside the block (see the module's text)."""
    global _open, _resume
    if _open == 0:
        _resume = gc.isenabled()
        gc.disable()
    _open += 1
    try:
        yield
    finally:
        _open -= 1
        if _open == 0 and _resume:
            gc.enable()
