"""serve-cnn's Prometheus metrics (prometheus_client, in a registry of the server's own): requests by endpoint and
status, their latency, model calls and the images each took, and the requests waiting for the model."""
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

ENDPOINTS = ("/", "/predict", "/metrics", "/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/{name}",
             "/v2/models/{name}/ready", "/v2/models/{name}/infer")


class Counted:
    """An ASGI middleware that counts every HTTP answer by endpoint and status, with its time from arrival (a plain
    ASGI wrapper: Starlette's BaseHTTPMiddleware re-streams every response, which showed in the server's profile)."""

    def __init__(self, app, metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [500]

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.answered(scope["path"], status[0], time.perf_counter() - started)


class Metrics:
    """The server's counters; `text()` is what GET /metrics answers."""

    def __init__(self, name, queue_depth, in_progress):
        self.name, self.registry = name, CollectorRegistry()
        self.requests = Counter("serve_requests", "HTTP requests answered, by endpoint and status code",
                                ["endpoint", "code"], registry=self.registry)
        self.latency = Histogram("serve_request_seconds", "seconds from a request's arrival to its answer, by "
                                 "endpoint and status code", ["endpoint", "code"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.model_calls = Counter("serve_model_calls", "model calls (each one batch)", registry=self.registry)
        self.batch_images = Histogram("serve_batch_images", "images in each model call", registry=self.registry,
                                      buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
        self.queue = Gauge("serve_queue_requests", "requests waiting for the model", registry=self.registry)
        self.queue.set_function(queue_depth)
        self.in_progress = Gauge("serve_requests_in_progress", "requests admitted and not yet answered (decoding, "
                                 "waiting or in the model; --max-queue bounds it)", registry=self.registry)
        self.in_progress.set_function(in_progress)

    def endpoint(self, path):
        """The endpoint label of a path (one per route; anything else is "other", so labels stay few)."""
        label = path.replace(f"/v2/models/{self.name}", "/v2/models/{name}")
        return label if label in ENDPOINTS else "other"

    def answered(self, path, status, seconds):
        """Count one answered request and its latency."""
        endpoint = self.endpoint(path)
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint, str(status)).observe(seconds)

    def model_call(self, images):
        """Count one model call of `images` images."""
        self.model_calls.inc()
        self.batch_images.observe(images)

    def text(self):
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
