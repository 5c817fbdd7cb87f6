"""The reconnect policy of UrlSource, with the FFmpeg pull replaced by a scripted one."""

import time

from earmark.core.events import SourceStatus
from earmark.ingest.url_source import SourceConfig, UrlSource, _DurationReached


def scripted(source: UrlSource, script):
    steps = iter(script)

    def pull_once(reconnect: bool) -> bool:
        step = next(steps)
        if step.startswith("live"):  # opened and gave audio, like the real pull reports it
            source._put(SourceStatus("live", "reconnected" if reconnect else None))
            source._connected = True
            source.samples += 16000
            time.sleep(float(step.split(":")[1]))
            raise OSError("dropped")
        if step == "garbage":  # opened, but nothing decodable came out
            source._put(SourceStatus("live", "reconnected" if reconnect else None))
            raise OSError("invalid data")
        if step == "long":
            raise _DurationReached()
        raise OSError("refused")

    source._pull_once = pull_once


async def run(script, budget_s=1.0):
    source = UrlSource("rtmp://example.invalid/x", SourceConfig({}, reconnect_budget_s=budget_s))
    scripted(source, script)
    return [item.state for item in [i async for i in source.chunks()]
            if isinstance(item, SourceStatus)]


async def test_each_outage_gets_its_own_reconnect_budget():
    # Live for longer than the budget between two drops: the second drop is retried too.
    states = await run(["live:0", "down", "live:1.5", "down", "down", "down", "down", "down"])
    assert states[:4] == ["live", "reconnecting", "reconnecting", "live"]
    assert states[4] == "reconnecting" and states[-1] == "failed"


async def test_opens_that_give_no_audio_do_not_renew_the_budget():
    # A source of garbage opens every time and fails every time: it must not retry forever.
    assert await run(["garbage"]) == ["live", "failed"]
    states = await run(["live:0"] + ["garbage"] * 50, budget_s=0.5)
    assert states[-1] == "failed" and len(states) < 40


async def test_a_source_that_never_opens_fails_at_once():
    assert await run(["down"]) == ["failed"]


async def test_the_duration_cap_ends_the_pull():
    assert await run(["long"]) == ["ended"]
