"""Dynamic batching: the images of concurrent requests gathered into one model call, up to `max_batch` images or
`max_wait` seconds after the first, on one model thread, while the requests' decoding runs in other threads (so a
loaded server decodes the next batch while the model runs this one). The queue is bounded: past `max_queue` waiting
requests, admission() and submit() raise Overloaded at once instead of letting memory and latency grow without
limit; admission() counts a request from its arrival, so the requests being decoded count too."""
import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np


AT_CAPACITY = "the server is at capacity; retry shortly"  # the 503's message, and the header that goes with it
RETRY = {"Retry-After": "1"}


class Overloaded(Exception):
    """The queue is full: the server answers 503 with Retry-After."""


class Batcher:
    """`predict`: images [B, S, S, 3] -> probabilities [B, C] (a Predictor's predict_on_batch)."""

    def __init__(self, predict, max_batch, max_wait, max_queue, observe=None):
        self.predict, self.max_batch, self.max_wait = predict, max_batch, max_wait
        self.max_queue = max_queue
        self.observe = observe or (lambda images: None)  # called with each model call's image count
        self.model_thread = ThreadPoolExecutor(1, thread_name_prefix="model")
        self.queue = None  # made in run(), inside the server's event loop
        self.carried = None  # a request that did not fit the last batch: the next one starts with it
        self.admitted = 0  # requests between their arrival and their answer (decoding, queued or in the model)

    def depth(self):
        """Requests waiting for the model."""
        return 0 if self.queue is None else self.queue.qsize()

    def full(self):
        """Whether admission() would refuse a request now."""
        return self.admitted >= self.max_queue

    @contextlib.contextmanager
    def admission(self):
        """One request from its arrival to its answer; with max_queue requests already in, Overloaded at once."""
        if self.full():
            raise Overloaded
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1

    async def submit(self, images):
        """The probabilities of `images` (float32 [n, S, S, 3]) once the model has run them in some batch."""
        future = asyncio.get_running_loop().create_future()
        try:
            self.queue.put_nowait((images, future))
        except asyncio.QueueFull:
            raise Overloaded from None
        return await future

    async def on_model(self, function, *args):
        """Run `function(*args)` on the model thread, between batches (e.g. a Grad-CAM heatmap)."""
        return await asyncio.get_running_loop().run_in_executor(self.model_thread, function, *args)

    async def run(self):
        """The gathering loop, for the server's lifetime: take a batch, run it, hand each request its rows."""
        self.queue = asyncio.Queue(self.max_queue)
        while True:
            items = await self.gather()
            if items:
                await self.call(items)

    async def gather(self):
        """Requests for one model call: the first waiting one, then others until max_batch images or max_wait.
        Requests whose caller gave up (timed out, disconnected) are dropped here."""
        first = self.carried or await self.queue.get()
        self.carried, items = None, [first]
        count, deadline = len(first[0]), asyncio.get_running_loop().time() + self.max_wait
        while count < self.max_batch:
            left = deadline - asyncio.get_running_loop().time()
            try:
                item = self.queue.get_nowait() if left <= 0 else await asyncio.wait_for(self.queue.get(), left)
            except (asyncio.QueueEmpty, TimeoutError):
                break
            if count + len(item[0]) > self.max_batch:
                self.carried = item
                break
            items.append(item)
            count += len(item[0])
        return [item for item in items if not item[1].done()]

    async def call(self, items):
        """One model call for `items`; each future gets its own rows, or the model's exception."""
        images = np.concatenate([images for images, _ in items])
        try:
            probs = await self.on_model(self.predict, images)
        except Exception as error:  # the model failed: every request of the batch hears it
            for _, future in items:
                if not future.done():
                    future.set_exception(error)
            return
        self.observe(len(images))
        start = 0
        for rows, future in items:
            if not future.done():
                future.set_result(np.asarray(probs[start:start + len(rows)]))
            start += len(rows)
