"""pipecat's own Deepgram service in a small pipeline, against a local Earmark.

Runs in pipecat's virtual environment (``.venv-pipecat``, from tests/pipecat/requirements.lock;
its pins conflict with the server's), as a voice agent's STT stage: a 16-bit 16 kHz WAV file is
fed in real time, 20 ms per frame, through pipecat's Silero ``VADProcessor`` (which says when
the user stopped speaking; the Deepgram service then sends ``Finalize``) into
``DeepgramSTTService`` pointed at the server. Prints one JSON object: the finals, the number of
interims, the Finalizes the service sent and the ``from_finalize`` answers it got.

    .venv-pipecat/bin/python tests/pipecat/pipeline.py http://127.0.0.1:8000 talk.wav
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import wave

from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.deepgram.stt import DeepgramSTTService

FRAME_S = 0.02


class CountingDeepgram(DeepgramSTTService):
    """The real service; also counts what the socket answered to its Finalizes."""

    answers = 0
    finalizes = 0

    async def _on_message(self, message):  # noqa: ANN001
        if getattr(message, "from_finalize", False):
            CountingDeepgram.answers += 1
        await super()._on_message(message)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, VADUserStoppedSpeakingFrame):
            CountingDeepgram.finalizes += 1
        await super().process_frame(frame, direction)


class Collector(FrameProcessor):
    def __init__(self) -> None:
        super().__init__()
        self.finals: list[dict] = []
        self.interims = 0
        self.t0 = time.monotonic()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TranscriptionFrame):
            result = frame.result
            words = [{"word": w.word, "start": w.start, "end": w.end}
                     for w in result.channel.alternatives[0].words] if result else []
            self.finals.append({"text": frame.text, "at": time.monotonic() - self.t0,
                                "from_finalize": bool(getattr(result, "from_finalize", False)),
                                "words": words})
        elif isinstance(frame, InterimTranscriptionFrame):
            self.interims += 1
        await self.push_frame(frame, direction)


async def main(base_url: str, path: str) -> None:
    with wave.open(path) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        pcm = w.readframes(w.getnframes())
    stt = CountingDeepgram(api_key="unused-on-loopback", base_url=base_url)
    collector = Collector()
    pipeline = Pipeline([VADProcessor(vad_analyzer=SileroVADAnalyzer()), stt, collector])
    task = PipelineTask(pipeline, params=PipelineParams(audio_in_sample_rate=16000),
                        idle_timeout_secs=None)

    async def feed() -> None:
        await asyncio.sleep(1.0)  # the service connects on StartFrame
        step = int(16000 * FRAME_S) * 2
        t0 = time.monotonic()
        collector.t0 = t0
        for i in range(0, len(pcm), step):
            await asyncio.sleep(max(0.0, t0 + (i // 2) / 16000 - time.monotonic()))
            await task.queue_frame(InputAudioRawFrame(audio=pcm[i:i + step], sample_rate=16000,
                                                      num_channels=1))
        await asyncio.sleep(2.0)  # the last answers
        await task.queue_frame(EndFrame())

    feeder = asyncio.create_task(feed())
    await PipelineRunner(handle_sigint=False).run(task)
    await feeder
    print(json.dumps({"finals": collector.finals, "interims": collector.interims,
                      "finalizes": CountingDeepgram.finalizes,
                      "answers": CountingDeepgram.answers}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
