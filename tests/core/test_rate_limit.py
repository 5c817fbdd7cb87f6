from earmark.core.rate_limit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_may_burst_its_minute_then_waits_for_refill():
    clock = Clock()
    limiter = RateLimiter(clock)
    assert all(limiter.take("a", 6) == 0 for _ in range(6))
    wait = limiter.take("a", 6)
    assert 9.9 < wait <= 10.0  # one request back every 10 s at 6 rpm
    clock.now += 10.0
    assert limiter.take("a", 6) == 0
    assert limiter.take("a", 6) > 0


def test_keys_do_not_share_allowances():
    limiter = RateLimiter(Clock())
    for _ in range(3):
        limiter.take("a", 3)
    assert limiter.take("a", 3) > 0
    assert limiter.take("b", 3) == 0


def test_idle_buckets_are_forgotten_so_memory_stays_bounded():
    clock = Clock()
    limiter = RateLimiter(clock)
    for k in range(1100):
        limiter.take(f"k{k}", 10)
        clock.now += 0.1
    assert len(limiter._buckets) <= 1024
