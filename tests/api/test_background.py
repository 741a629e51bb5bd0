"""Background jobs: a failing job carries on at its next turn; stop ends them all."""

import asyncio

from api.http.background import Background


async def test_jobs_run_again_after_a_failure_and_stop_with_the_server():
    background = Background()
    turns: list[str] = []

    async def flaky() -> None:
        turns.append("flaky")
        if len(turns) == 1:
            raise RuntimeError("database down")

    forever = asyncio.Event()

    async def loop() -> None:
        turns.append("loop")
        await forever.wait()

    background.every(0.01, "flaky", flaky)
    background.run("loop", loop)
    assert background.names == ["flaky", "loop"]
    background.start()
    for _ in range(200):
        if turns.count("flaky") >= 3:
            break
        await asyncio.sleep(0.01)
    assert turns.count("flaky") >= 3 and turns.count("loop") == 1
    await background.stop()
    after = len(turns)
    await asyncio.sleep(0.05)
    assert len(turns) == after
