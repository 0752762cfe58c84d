"""What a request passes before the app sees it (an ASGI middleware): the bearer token, compared in constant time;
the body size limit (413 from the Content-Length header, without reading the body, or as soon as a body without
one passes the limit); a deadline on reading the body (a client sending a byte a second gets 408); and, when the
server is at capacity, 503 for a POST (a model request) before its body is read, so the excess is refused at once.
Every refusal is one JSON body, {"error": ...}."""
import asyncio
import hmac

from starlette.responses import JSONResponse

from cnn.serve.batcher import AT_CAPACITY, RETRY

OPEN_PATHS = ("/", "/v2/health/live", "/v2/health/ready")  # the page and the probes need no token


class TooLarge(Exception):
    """The body passed the size limit."""


class Guard:
    """`token`: the bearer token every path but OPEN_PATHS needs (None: none); `max_bytes`: the body limit;
    `read_timeout`: seconds to receive the whole body; `full()`: whether the server admits no more requests."""

    def __init__(self, app, token, max_bytes, read_timeout, full=lambda: False):
        self.app, self.token, self.max_bytes, self.read_timeout = app, token, max_bytes, read_timeout
        self.full = full

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refusal = self.refusal(scope)
        if refusal is None:
            try:
                body = await asyncio.wait_for(self.read(receive), self.read_timeout)
            except TooLarge:
                refusal = 413, f"the request body is larger than the limit of {self.max_bytes:,} bytes"
            except TimeoutError:
                refusal = 408, f"the request body took longer than {self.read_timeout:g} s to arrive"
        if refusal is not None:
            status, message = refusal
            headers = {401: {"WWW-Authenticate": "Bearer"}, 503: RETRY}.get(status)
            return await JSONResponse({"error": message}, status_code=status, headers=headers)(scope, receive, send)
        await self.app(scope, replayed(body, receive), send)

    def refusal(self, scope):
        """(status, message) for a request refused from its headers alone, else None."""
        headers = dict(scope["headers"])
        if self.token and scope["path"] not in OPEN_PATHS:
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, b"Bearer " + self.token.encode()):
                return 401, "missing or wrong bearer token (send Authorization: Bearer <token>)"
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return 400, "Content-Length is not a number"
            if int(length) > self.max_bytes:
                return 413, f"the request body ({int(length):,} bytes) is larger than the limit of {self.max_bytes:,}"
        if scope["method"] == "POST" and self.full():
            return 503, AT_CAPACITY
        return None

    async def read(self, receive):
        """The whole request body, refused past max_bytes."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                raise TooLarge
            if not message.get("more_body"):
                break
        return b"".join(chunks)


def replayed(body, receive):
    """An ASGI receive that hands the app the body already read, then waits on the client as before."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive_again():
        return pending.pop() if pending else await receive()

    return receive_again
