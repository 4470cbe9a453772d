"""Dynamic micro-batching: concurrent requests share one model call.

A request submits its items (texts, windows, sentences) and awaits their results. One worker task takes
every waiting request (up to ``max_batch`` items); when the previous batch had company (more than one
request), it also waits up to ``max_wait_ms`` from the first request for more — but only until the crowd
of last time is in: the requests the previous batch answered, plus those that came while it ran. In steady
state the clients that were answered together send their next requests together, so the batch starts as soon
as they are in, not at the deadline; and clients split over two batches (half waiting while the other half
computes) merge into one, larger and cheaper per request, as soon as the answered half is back. A lone client
pays no waiting, concurrent clients fill batches, and a shrinking crowd costs one wait of max_wait_ms.
The batch runs once (in one thread, so model calls never overlap) and every request gets its own slice of
the results. The engines pad each batch themselves, with a lengths input, so a request's results do not
depend on what it was batched with. ``max_batch=1``: one at a time.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor


class MicroBatcher:
    def __init__(self, fn, max_batch: int = 32, max_wait_ms: float = 5.0):
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError(f"max_batch must be >= 1 and max_wait_ms >= 0, got {max_batch} and {max_wait_ms}")
        self.fn, self.max_batch, self.max_wait = fn, max_batch, max_wait_ms / 1000.0
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rnnkit-batch")
        self.queue: asyncio.Queue | None = None
        self.worker: asyncio.Task | None = None
        self.batches = self.items = 0  # counters, for /v1/health and the benchmark
        self._last = 1  # requests in the last batch: how many to wait for (no waiting after a lone one)

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self.worker = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            try:
                await self.worker
            except asyncio.CancelledError:
                pass
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, items: list) -> list:
        if self.queue is None:
            await self.start()
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((items, future))
        return await future

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            waiting = self.queue.qsize()  # came while the last batch ran: the last batch's clients are not among them
            batch = [await self.queue.get()]
            company = self._last > 1
            crowd, deadline = self._last + waiting if company else 0, loop.time() + (self.max_wait if company else 0.0)
            n = len(batch[0][0])
            while n < self.max_batch:
                if len(batch) >= crowd and self.queue.empty():  # the crowd of last time is in
                    break
                try:
                    nxt = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    left = deadline - loop.time()
                    if left <= 0:
                        break
                    try:
                        nxt = await asyncio.wait_for(self.queue.get(), left)
                    except asyncio.TimeoutError:
                        break
                batch.append(nxt)
                n += len(nxt[0])
            batch = [(items, f) for items, f in batch if not f.cancelled()]  # timed out while waiting
            if not batch:
                continue
            self._last = len(batch)
            flat = [x for items, _ in batch for x in items]
            try:
                results = await loop.run_in_executor(self.executor, self.fn, flat)
            except Exception as e:  # every request of the batch gets the error (answered 500, no traceback)
                for _, f in batch:
                    if not f.done():
                        f.set_exception(e)
                continue
            self.batches, self.items = self.batches + 1, self.items + len(flat)
            start = 0
            for items, f in batch:
                if not f.done():
                    f.set_result(results[start: start + len(items)])
                start += len(items)
