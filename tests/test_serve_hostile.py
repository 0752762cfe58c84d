"""serve-cnn under hostile requests: each gets one clear HTTP error with a JSON body, the server stays up and the
next good request is answered; SIGTERM finishes what is in flight, kill -9 under load leaves nothing changed on
disk and the server restarts on the same port. The batcher's bounded queue refuses the excess at once."""
import asyncio
import hashlib
import json
import os
import signal
import socket
import struct
import threading
import time
import zlib

import numpy as np
import pytest

from cnn.serve.batcher import Batcher, Overloaded
from serving import TOKEN, Server

NAME = "run"


@pytest.fixture(scope="module")
def served(small_run, tmp_path_factory):
    """(server with a token and a 2-second body deadline, one good photo's bytes)."""
    run, labels = small_run
    server = Server(run, tmp_path_factory.mktemp("hostile"), "--read-timeout", "2", token=TOKEN)
    with open(labels[labels.split == "test"].path.iloc[0], "rb") as f:
        photo = f.read()
    yield server, photo
    server.stop()


def still_serving(server, photo):
    """The next good request is answered."""
    answer = server.post("/predict", files={"file": ("ok.jpg", photo, "image/jpeg")})
    assert answer.status_code == 200, answer.text
    return answer.json()[0]


def refused(answer, status, words):
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"]


def png_header(width, height):
    """A PNG whose header declares width x height (and whose pixels are cut short)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\0" * 64


def upload(server, data, name="photo.jpg"):
    return server.post("/predict", files={"file": (name, data, "image/jpeg")})


def oip(server, tensor=None, raw=None, content_type="application/json"):
    body = raw if raw is not None else json.dumps({"inputs": [tensor]})
    return server.post(f"/v2/models/{NAME}/infer", data=body, headers={"Content-Type": content_type})


@pytest.mark.parametrize("case", ["empty", "text", "truncated", "huge-png", "no-file", "two-files", "content-type"])
def test_bad_uploads_get_one_json_error(served, case):
    server, photo = served
    answer = {
        "empty": lambda: upload(server, b""),
        "text": lambda: upload(server, b"this is not a photo\n" * 20),
        "truncated": lambda: upload(server, photo[:len(photo) // 3]),
        "huge-png": lambda: upload(server, png_header(20000, 20000), "big.png"),
        "no-file": lambda: server.post("/predict", files={"note": (None, "hello")}),
        "two-files": lambda: server.post("/predict", files=[("file", ("a.jpg", photo)), ("file", ("b.jpg", photo))]),
        "content-type": lambda: server.post("/predict", data=photo, headers={"Content-Type": "image/jpeg"}),
    }[case]()
    status, words = {"empty": (422, "empty"), "text": (422, "not a decodable image"),
                     "truncated": (422, "not a decodable image"), "huge-png": (413, "400,000,000 pixels"),
                     "no-file": (422, "exactly one image file"), "two-files": (422, "this request has 2"),
                     "content-type": (415, "multipart/form-data")}[case]
    refused(answer, status, words)
    still_serving(server, photo)


@pytest.mark.parametrize("case", ["shape", "datatype", "nan", "ten-thousand", "malformed", "not-base64", "empty-body"])
def test_bad_oip_requests_get_one_json_error(served, case):
    server, photo = served
    pixels = {"name": "pixels", "datatype": "FP32"}
    answer = {
        "shape": lambda: oip(server, {**pixels, "shape": [1, 8, 8, 3], "data": [0.0] * 192}),
        "datatype": lambda: oip(server, {"name": "x", "datatype": "INT8", "shape": [1], "data": [1]}),
        "nan": lambda: oip(server, raw='{"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1, 32, 32, 3], '
                                       '"data": [NaN' + ", 1" * 3071 + "]}]}"),
        "ten-thousand": lambda: oip(server, {"name": "image", "datatype": "BYTES", "shape": [10000],
                                             "data": ["AA=="] * 10000}),
        "malformed": lambda: oip(server, raw='{"inputs": [{"name": '),
        "not-base64": lambda: oip(server, {"name": "image", "datatype": "BYTES", "shape": [1], "data": ["%%%"]}),
        "empty-body": lambda: oip(server, raw=b""),
    }[case]()
    status, words = {"shape": (422, "[N, 32, 32, 3]"), "datatype": (422, "'INT8' is not accepted"),
                     "nan": (422, "finite"), "ten-thousand": (413, "at most 256"), "malformed": (400, "not valid JSON"),
                     "not-base64": (422, "base64"), "empty-body": (400, "not valid JSON")}[case]
    refused(answer, status, words)
    still_serving(server, photo)


def test_tokens_are_checked_and_the_page_and_probes_are_open(served):
    server, photo = served
    import requests

    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        answer = requests.post(server.url("/predict"), files={"file": ("a.jpg", photo)}, headers=headers, timeout=30)
        refused(answer, 401, "bearer token")
        assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert requests.get(server.url("/metrics"), timeout=30).status_code == 401
    assert requests.get(server.url("/"), timeout=30).status_code == 200
    assert requests.get(server.url("/v2/health/ready"), timeout=30).status_code == 200
    still_serving(server, photo)


def test_a_path_as_file_name_is_only_a_name(served):
    server, photo = served
    answer = upload(server, photo, name="../../etc/passwd")
    assert answer.status_code == 200 and answer.json()[0]["path"] == "passwd"
    assert answer.json()[0]["predictions"] == still_serving(server, photo)["predictions"]  # the upload, not the file


def raw_request(server, headers, body=b""):
    """A socket with the request line and `headers` sent (and `body`), for clients requests cannot imitate."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    lines = ["POST /predict HTTP/1.1", f"Host: 127.0.0.1:{server.port}", f"Authorization: Bearer {TOKEN}", *headers]
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return s


def status_of(s):
    return int(s.recv(65536).split(b" ", 2)[1])


def test_a_200_mb_body_is_refused_from_its_header(served):
    server, photo = served
    started = time.monotonic()
    with raw_request(server, ["Content-Type: multipart/form-data; boundary=x", "Content-Length: 200000000"],
                     b"x" * 1000) as s:
        assert status_of(s) == 413
    assert time.monotonic() - started < 10  # answered without waiting for 200 MB
    still_serving(server, photo)


def test_a_slow_client_is_cut_off(served):
    server, photo = served
    with raw_request(server, ["Content-Type: multipart/form-data; boundary=x", "Content-Length: 100"]) as s:
        started = time.monotonic()
        for _ in range(3):  # a byte a second
            s.sendall(b"-")
            time.sleep(1)
        assert status_of(s) == 408 and time.monotonic() - started < 6
    still_serving(server, photo)


def test_a_thousand_dropped_connections_leave_it_serving(served):
    server, photo = served
    for i in range(1000):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        if i % 2:
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\nabc")
        s.close()
    still_serving(server, photo)


def run_folder_hashes(run):
    return {p.relative_to(run): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run.rglob("*")) if p.is_file()}


def test_excess_503_sigterm_finishes_in_flight_and_kill_9_under_load_changes_nothing(small_run, tmp_path):
    run, labels = small_run
    with open(labels[labels.split == "test"].path.iloc[0], "rb") as f:
        photo = f.read()
    before = run_folder_hashes(run)
    server = Server(run, tmp_path, "--max-wait-ms", "1500", "--max-queue", "1")  # a request waits 1.5 s for company
    answers = []
    slow = threading.Thread(target=lambda: answers.append(upload(server, photo).status_code))
    slow.start()
    time.sleep(0.5)
    started = time.monotonic()
    excess = upload(server, photo)  # a second request while the first is in progress: over --max-queue 1
    refused(excess, 503, "at capacity")
    assert excess.headers["Retry-After"] == "1" and time.monotonic() - started < 0.5  # at once, not queued
    with socket.create_connection(("127.0.0.1", server.port)) as raw:  # refused before its body is read:
        raw.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                    b"Content-Length: 100000\r\n\r\n")  # headers only, the body never comes
        raw.settimeout(5)
        assert raw.recv(64).startswith(b"HTTP/1.1 503")
    server.process.send_signal(signal.SIGTERM)
    slow.join()
    assert answers == [200] and server.process.wait(timeout=60) == 0
    server.stop()

    server = Server(run, tmp_path, port=server.port)
    stop, errors = threading.Event(), []

    def load():
        while not stop.is_set():
            try:
                upload(server, photo)
            except Exception as error:  # the connection dies with the server: expected
                errors.append(error)

    threads = [threading.Thread(target=load) for _ in range(4)]
    [t.start() for t in threads]
    time.sleep(2)
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=30)
    stop.set()
    [t.join() for t in threads]
    server.stop()
    again = Server(run, tmp_path, port=server.port)
    try:
        assert still_serving(again, photo)
    finally:
        assert again.stop() == 0
    assert run_folder_hashes(run) == before


def test_the_batcher_refuses_past_its_queue_at_once():
    """A full queue raises Overloaded at once (the server's 503), while queued requests are still answered."""
    def slow_model(images):
        time.sleep(0.3)
        return np.repeat(images.reshape(len(images), -1)[:, :1], 2, axis=1)

    async def scenario():
        batcher = Batcher(slow_model, max_batch=1, max_wait=0, max_queue=2)
        loop_task = asyncio.create_task(batcher.run())
        await asyncio.sleep(0)
        tasks = [asyncio.create_task(batcher.submit(np.full((1, 1), float(i), np.float32))) for i in range(8)]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        loop_task.cancel()
        return results

    started = time.monotonic()
    results = asyncio.run(scenario())
    refused_ = [r for r in results if isinstance(r, Overloaded)]
    answered = [(i, r) for i, r in enumerate(results) if not isinstance(r, Exception)]
    assert len(refused_) >= 4 and len(answered) >= 2
    assert all(float(r[0, 0]) == i for i, r in answered)  # each request got its own rows
    assert time.monotonic() - started < 0.3 * len(answered) + 1.5  # the refused ones did not wait for the model
