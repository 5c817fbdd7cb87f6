"""WallClockFollow: the silence a live socket is owed when its client stops sending."""

from earmark.live.wall_clock import STALL_LOUD_S, STALL_QUIET_S, WallClockFollow

SR = 16000
LOUD, QUIET = 0.5, 0.001


def real_time_client(clock: WallClockFollow, seconds: float, peak: float, t0: float = 0.0,
                     frame_s: float = 0.1) -> float:
    t = t0
    for _ in range(round(seconds / frame_s)):
        t += frame_s
        clock.on_audio(t, int(frame_s * SR), peak)
    return t


def test_nothing_is_owed_before_audio_or_while_frames_arrive():
    clock = WallClockFollow()
    assert clock.owed(100.0) == 0 and not clock.active
    t = real_time_client(clock, 3.0, QUIET)
    assert clock.active
    assert clock.owed(t + 0.05) == 0  # the next frame is simply not here yet


def test_a_client_that_stops_after_a_quiet_frame_is_filled_up_to_the_wall_clock():
    clock = WallClockFollow()
    t = real_time_client(clock, 3.0, QUIET)
    assert clock.owed(t + STALL_QUIET_S - 0.01) == 0
    owed = clock.owed(t + 1.0)
    assert abs(owed - SR) <= SR // 100
    clock.filled(owed)
    assert clock.owed(t + 1.005) == 0  # caught up: only new wall time is owed
    assert abs(clock.owed(t + 1.5) - int(0.5 * SR)) <= SR // 100


def test_after_a_loud_frame_the_stall_is_longer_unless_the_client_sends_keepalive():
    clock = WallClockFollow()
    t = real_time_client(clock, 2.0, LOUD)
    assert clock.owed(t + STALL_QUIET_S + 0.2) == 0  # mid-word: frames may be late
    assert clock.owed(t + STALL_LOUD_S + 0.01) > 0
    clock = WallClockFollow()
    t = real_time_client(clock, 2.0, LOUD)
    clock.on_keepalive()  # the client says it is not sending
    assert clock.owed(t + STALL_QUIET_S + 0.01) > 0


def test_a_client_ahead_of_real_time_is_never_filled_until_the_wall_clock_catches_up():
    clock = WallClockFollow()
    clock.on_audio(0.0, 0, QUIET)
    for i in range(1, 301):  # 30 s of audio sent in 3 s
        clock.on_audio(i * 0.01, SR // 10, QUIET)
    assert clock.owed(10.0) == 0  # 30 s of audio, 10 s of wall time: a pause, not silence
    assert clock.owed(29.0) == 0
    assert abs(clock.owed(35.0) - 5 * SR) <= SR // 100
