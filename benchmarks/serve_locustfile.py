"""Locust users for benchmarks/bench_serve.py: each sends real photos to serve-cnn's POST /predict, one image a
request, as fast as it is answered. BENCH_PHOTOS names the photo folder, BENCH_TOKEN the bearer token (optional),
BENCH_RECORD a JSON file that receives every request's (status, milliseconds) when the run ends."""
import json
import os
import random
import uuid
from pathlib import Path

from locust import FastHttpUser, constant, events, task

PHOTOS = sorted(Path(os.environ["BENCH_PHOTOS"]).rglob("*.jpg"))[:300]
RECORDED = []


def multipart(photo):
    """(body, content type) of a multipart form holding one photo as field 'file'."""
    boundary = uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{photo.name}"\r\n'
            "Content-Type: image/jpeg\r\n\r\n").encode()
    return head + photo.read_bytes() + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


BODIES = [multipart(p) for p in PHOTOS]


class Photographer(FastHttpUser):
    wait_time = constant(0)

    @task
    def predict(self):
        body, content_type = random.choice(BODIES)
        headers = {"Content-Type": content_type}
        if os.environ.get("BENCH_TOKEN"):
            headers["Authorization"] = f"Bearer {os.environ['BENCH_TOKEN']}"
        self.client.post("/predict", data=body, headers=headers)


@events.request.add_listener
def record(response_time=None, response=None, **kw):
    RECORDED.append((getattr(response, "status_code", 0) or 0, response_time))


@events.quitting.add_listener
def save(environment, **kw):
    if os.environ.get("BENCH_RECORD"):
        Path(os.environ["BENCH_RECORD"]).write_text(json.dumps(RECORDED))
