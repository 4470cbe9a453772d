"""A fake clock for the Trainer's time-dependent behaviour (deadlines, tokens/s, ETA), without timing anything:
``Ticking`` batches advance the clock by a fixed number of seconds every time a batch is fetched."""

from __future__ import annotations


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class Ticking:
    """Batches that advance ``clock`` by ``seconds`` on every ``get`` (the rest is the wrapped Batches)."""

    def __init__(self, inner, clock: FakeClock, seconds: float, limit: int | None = None) -> None:
        self.inner, self.clock, self.seconds, self.limit = inner, clock, seconds, limit
        self.carries_state = inner.carries_state

    def __len__(self) -> int:
        return len(self.inner) if self.limit is None else self.limit

    def get(self, i: int, epoch: int):
        self.clock.now += self.seconds
        return self.inner.get(i, epoch)

    def shard(self, rank: int, world_size: int) -> Ticking:
        return Ticking(self.inner.shard(rank, world_size), self.clock, self.seconds, self.limit)


def fit_with_clock(trainer, clock: FakeClock, resume: bool = False) -> list[dict]:
    trainer.clock = clock
    return trainer.fit(resume=resume)
