"""serve-cnn answers as predict-cnn does: the Open Inference Protocol's infer (image files and pixels), /predict,
metadata and health, batching of concurrent requests, every kind of run, and the page in a real browser."""
import base64
import shutil
import threading

import numpy as np
import pytest
import requests

from cnn.cli import serve_main
from cnn.data.loader import decode_and_resize
from cnn.inference.predict import predict_images
from serving import TOKEN, Server

NAME = "run"  # the model's name: the run folder's


@pytest.fixture(scope="module")
def served(small_run, tmp_path_factory):
    """(server, run folder, six test images): the small run served with a token and batches that wait 300 ms."""
    run, labels = small_run
    server = Server(run, tmp_path_factory.mktemp("serve"), "--max-wait-ms", "300", token=TOKEN)
    yield server, run, [str(p) for p in labels[labels.split == "test"].path[:6]]
    server.stop()


def b64(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


def infer(server, tensor):
    answer = server.post(f"/v2/models/{NAME}/infer", json={"id": "t", "inputs": [tensor]})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_oip_infer_of_image_files_equals_predict_cnn(served):
    server, run, images = served
    body = infer(server, {"name": "image", "shape": [len(images)], "datatype": "BYTES", "data": [b64(p) for p in images]})
    probs = np.asarray(body["outputs"][0]["data"]).reshape(body["outputs"][0]["shape"])
    classes = server.get(f"/v2/models/{NAME}").json()["parameters"]["classes"]
    expected = predict_images(run, images, top=len(classes))
    for row, (_, preds) in zip(probs, expected):
        assert {c: row[classes.index(c)] for c, _ in preds} == pytest.approx(dict(preds), abs=1e-5)
    assert body["outputs"][1]["data"] == [preds[0][0] for _, preds in expected] and body["id"] == "t"


def test_fp32_pixels_answer_as_the_encoded_files_do(served):
    server, run, images = served
    size = server.get(f"/v2/models/{NAME}").json()["inputs"][1]["shape"][1]
    pixels = np.stack([decode_and_resize(p, (size, size)) for p in images[:2]])
    from_pixels = infer(server, {"name": "pixels", "shape": list(pixels.shape), "datatype": "FP32",
                                 "data": pixels.ravel().tolist()})
    from_files = infer(server, {"name": "image", "shape": [2], "datatype": "BYTES", "data": [b64(p) for p in images[:2]]})
    assert from_pixels["outputs"][0]["data"] == pytest.approx(from_files["outputs"][0]["data"], abs=1e-5)


def test_predict_returns_predict_cnn_json_record(served):
    server, run, images = served
    with open(images[0], "rb") as f:
        answer = server.post("/predict?top=3", files={"file": ("photo.jpg", f, "image/jpeg")})
    assert answer.status_code == 200, answer.text
    [(_, preds)] = predict_images(run, images[:1], top=3)
    [record] = answer.json()
    assert record["path"] == "photo.jpg" and [p["class"] for p in record["predictions"]] == [c for c, _ in preds]
    assert [p["probability"] for p in record["predictions"]] == pytest.approx([p for _, p in preds], abs=1e-5)


def test_concurrent_requests_share_model_calls_and_keep_their_answers(served):
    server, _, images = served
    single = [infer(server, {"name": "image", "shape": [1], "datatype": "BYTES", "data": [b64(p)]}) for p in images]
    before, answers, start = server.model_calls(), [None] * len(images), threading.Barrier(len(images))

    def ask(i):
        start.wait()
        answers[i] = infer(server, {"name": "image", "shape": [1], "datatype": "BYTES", "data": [b64(images[i])]})

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(images))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert server.model_calls() - before < len(images)  # gathered: fewer model calls than requests
    for alone, together in zip(single, answers):
        assert together["outputs"][0]["data"] == pytest.approx(alone["outputs"][0]["data"], abs=1e-5)


def test_metadata_health_and_unknown_model(served):
    server, run, _ = served
    meta = server.get(f"/v2/models/{NAME}").json()
    assert meta["name"] == NAME and meta["parameters"]["kind"] == "flat"
    assert meta["outputs"][0]["shape"] == [-1, len(meta["parameters"]["classes"])]
    assert server.get("/v2/health/live").json() == {"live": True}
    assert server.get(f"/v2/models/{NAME}/ready").json()["ready"] is True
    missing = server.get("/v2/models/other")
    assert missing.status_code == 404 and "serves 'run'" in missing.json()["error"]


def answered(server):
    """{(endpoint, status code): count} from /metrics' serve_requests_total."""
    return {(labels["endpoint"], labels["code"]): value for labels, value in server.samples("serve_requests_total")}


def test_metrics_count_answers_and_refusals_by_endpoint_and_status(served):
    server, _, images = served
    before = answered(server)
    with open(images[0], "rb") as f:
        assert server.post("/predict", files={"file": ("a.jpg", f, "image/jpeg")}).status_code == 200
    assert requests.post(server.url("/predict"), timeout=60).status_code == 401  # no token
    assert server.get("/v2/models/other").status_code == 404
    after = answered(server)
    for key in (("/predict", "200"), ("/predict", "401"), ("other", "404")):
        assert after.get(key, 0) - before.get(key, 0) == 1, key


def test_the_page_shows_the_top_class_in_chromium(served, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    if not shutil.which("chromedriver") or not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server, _, images = served
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=390,844"):
        options.add_argument(flag)  # a phone's width
    browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
    try:
        browser.get(server.url("/"))
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.ID, "file").send_keys(images[0])
        top = WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.ID, "top-class"))[0].text
        with open(images[0], "rb") as f:
            expected = server.post("/predict", files={"file": ("x.jpg", f)}).json()[0]["predictions"][0]["class"]
        assert top == expected
        WebDriverWait(browser, 60).until(lambda b: b.find_element(By.ID, "cam").get_attribute("src"))
        assert browser.find_element(By.ID, "cam").get_attribute("src").startswith("data:image/png;base64,")
        width = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1] <= 500  # a phone's width (headless Chromium's narrowest), no sideways scroll
        assert browser.save_screenshot(str(tmp_path / "page.png"))
    finally:
        browser.quit()


def test_an_export_is_served_and_says_why_it_has_no_heatmap(small_run, tmp_path):
    from cnn.inference.export import export_run

    run, labels = small_run
    export = export_run(run, out=tmp_path / "export")
    server = Server(export, tmp_path)
    try:
        assert server.get("/v2/models/export").json()["parameters"]["kind"] == "export"
        with open(labels[labels.split == "test"].path.iloc[0], "rb") as f:
            [record] = server.post("/predict?cam=true", files={"file": ("a.jpg", f)}).json()
        assert record["cam"] is None and "export" in record["cam_note"]
    finally:
        assert server.stop() == 0


def test_an_ensemble_is_served_as_the_mean_of_its_members(small_run, tmp_path):
    """A --repeats folder (here two copies of one finished run as seed-0/ and seed-1/) is served as its ensemble."""
    run, labels = small_run
    for seed in (0, 1):
        shutil.copytree(run, tmp_path / "repeats" / f"seed-{seed}")
    photo = labels[labels.split == "test"].path.iloc[0]
    server = Server(tmp_path / "repeats", tmp_path)
    try:
        assert server.get("/v2/models/repeats").json()["parameters"]["kind"] == "ensemble"
        with open(photo, "rb") as f:
            [record] = server.post("/predict?cam=true&top=2", files={"file": ("a.jpg", f)}).json()
        [(_, preds)] = predict_images(tmp_path / "repeats", [photo], top=2)
        assert [p["probability"] for p in record["predictions"]] == pytest.approx([p for _, p in preds], abs=1e-5)
        assert record["cam"] is None and "ensemble" in record["cam_note"]
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("argv, message", [
    (["--host", "0.0.0.0"], "give --token-file"),
    (["--token-file", "/nonexistent/token"], "cannot be read"),
])
def test_unsafe_or_broken_settings_are_one_line_errors(small_run, argv, message, capsys):
    assert serve_main([str(small_run[0]), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and err.startswith("serve-cnn: error:")
