"""`collector_paused`: the collector is off inside, back on after the last open pause ends,
also when pauses overlap out of order (two tasks of one event loop), and left off when it was
off before."""

from __future__ import annotations

import asyncio
import gc

from chains.gcpause import collector_paused


def test_nested_pauses_resume_the_collector_after_the_last() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause is still open
    assert gc.isenabled()


def test_overlapping_pauses_of_two_tasks() -> None:
    order: list[str] = []

    async def task(name: str, hold: asyncio.Event, release: asyncio.Event) -> None:
        with collector_paused():
            hold.set()
            await release.wait()
            order.append(f"{name} ends, collector {'on' if gc.isenabled() else 'off'}")

    async def main() -> None:
        a_in, b_in, a_go, b_go = (asyncio.Event() for _ in range(4))
        a = asyncio.create_task(task("a", a_in, a_go))
        await a_in.wait()
        b = asyncio.create_task(task("b", b_in, b_go))
        await b_in.wait()
        a_go.set()  # the first pause ends while the second is still open
        await a
        assert not gc.isenabled()
        b_go.set()
        await b

    asyncio.run(main())
    assert order == ["a ends, collector off", "b ends, collector off"]
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
