"""Real `xmargin` processes for the fault tests: spawn one, collect its output while it runs,
wait for a line, count what a publish pass reported."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.conftest import XMARGIN

_PUBLISH = re.compile(r"publish: (\d+) users, \d+ written, (\d+) changed")


@dataclass
class Running:
    """One `xmargin` process and the lines it has written so far (stdout and stderr)."""

    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    @property
    def text(self) -> str:
        return "".join(self.lines)

    async def wait_for_line(self, needle: str, within_seconds: float = 30) -> None:
        """Until a line containing `needle` was written (polled against a deadline)."""
        deadline = time.monotonic() + within_seconds
        while not any(needle in line for line in self.lines):
            if time.monotonic() > deadline or self.process.returncode is not None:
                raise AssertionError(f"no line with {needle!r} in: {self.text[-3000:]}")
            await asyncio.sleep(0.05)

    async def finish(self, within_seconds: float = 60) -> int:
        code = await asyncio.wait_for(self.process.wait(), timeout=within_seconds)
        if self.reader is not None:
            await self.reader
        return code

    def changed_by_publish(self) -> int:
        """History rows this process's publish passes reported writing."""
        return sum(int(m.group(2)) for line in self.lines if (m := _PUBLISH.search(line)))


async def spawn(*args: str, config: Path, database_url: str, cwd: Path) -> Running:
    process = await asyncio.create_subprocess_exec(
        *XMARGIN,
        *args,
        "--config",
        str(config),
        env={**os.environ, "XMARGIN_DATABASE_URL": database_url},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    running = Running(process)

    async def collect() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            running.lines.append(raw.decode("utf-8", "replace"))

    running.reader = asyncio.create_task(collect())
    return running


async def until(check: Callable[[], Awaitable[bool]], what: str, within: float = 30) -> None:
    """Wait until `check()` is true (its errors count as not yet: a test's own reads fail
    while a server restarts), at most `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            if await check():
                return
        except Exception:  # the test's own reads fail while the server restarts
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)
