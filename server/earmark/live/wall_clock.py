"""Session time that keeps up with the wall clock when a live client stops sending audio.

The core's clock is the audio it receives. A client that pauses its audio (push-to-talk, a
muted microphone, a voice agent that sends only KeepAlive) would otherwise wait for its
endpoint, last finals and UtteranceEnd until it sends audio again. Once nothing has arrived
for a stall, the adapter feeds the silence that the wall clock says has passed.

Only a client behind real time is filled: one that sends faster than real time (a file) has
audio ahead of the wall clock, and its pauses are not silence. The stall is short after a
quiet frame (a pause between words looks like that) and long after a loud one, so a late burst
of frames mid-word on a jittery link is not cut by silence; a KeepAlive says outright that
the client is not sending, so the short stall applies then.
"""

from __future__ import annotations

SAMPLE_RATE = 16000
STALL_QUIET_S = 0.5
STALL_LOUD_S = 1.0  # ~3x the longest late-frame gap measured at 2x overload (webrtc_peer.py)
QUIET_PEAK = 1000 / 32768  # a frame under -30 dBFS counts as quiet
TICK_S = 0.05  # how often an adapter asks while the client is silent
MIN_FILL = SAMPLE_RATE // 100  # 10 ms


class WallClockFollow:
    """Pure bookkeeping: the adapter reports frames and asks what silence is owed."""

    def __init__(self, *, stall_quiet_s: float = STALL_QUIET_S,
                 stall_loud_s: float = STALL_LOUD_S) -> None:
        self.stall_quiet_s = stall_quiet_s
        self.stall_loud_s = stall_loud_s
        self.started_at: float | None = None  # wall time the client's audio began
        self.samples = 0  # session audio so far, frames and fills together
        self.last_at: float | None = None
        self.last_quiet = True
        self.keepalive_since_audio = False

    @property
    def active(self) -> bool:
        """Audio has started: the adapter should keep asking while the client is silent."""
        return self.started_at is not None

    def on_audio(self, now: float, samples: int, peak: float) -> None:
        if self.started_at is None:  # the first frame's audio was captured before it came
            self.started_at = now - samples / SAMPLE_RATE
        self.samples += samples
        self.last_at = now
        self.last_quiet = peak < QUIET_PEAK
        self.keepalive_since_audio = False

    def on_keepalive(self) -> None:
        self.keepalive_since_audio = True

    def owed(self, now: float) -> int:
        """Samples of silence to feed now (0 while the client may still be sending)."""
        if self.started_at is None or self.last_at is None:
            return 0
        quiet = self.last_quiet or self.keepalive_since_audio
        if now - self.last_at < (self.stall_quiet_s if quiet else self.stall_loud_s):
            return 0
        behind = int((now - self.started_at) * SAMPLE_RATE) - self.samples
        return behind if behind >= MIN_FILL else 0

    def filled(self, samples: int) -> None:
        self.samples += samples
