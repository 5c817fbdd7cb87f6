"""Pure, synchronous streaming core: no I/O, no clocks, no model handles.

Time is a sample index at 16 kHz (``SAMPLE_RATE``) everywhere in this package.
"""

SAMPLE_RATE = 16_000
WINDOW_SAMPLES = 512  # one Silero VAD window at 16 kHz (32 ms)
