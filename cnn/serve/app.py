"""serve-cnn's web app (FastAPI, behind cnn.serve.guard): the Open Inference Protocol's health, metadata and infer
endpoints, POST /predict for one uploaded photo, GET /metrics and the page. Images are decoded in a thread pool,
as the training loader decodes files, and classified through the Batcher; refusals are one JSON body each."""
import asyncio
import base64
import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image
from starlette.exceptions import HTTPException

from cnn.data.loader import ImageTooLarge, decode_bytes
from cnn.evaluation.gradcam import heatmaps, overlay
from cnn.runs.predictor import UNEXPLAINED
from cnn.runs.ranking import prediction_record, top_classes
from cnn.serve.batcher import AT_CAPACITY, RETRY, Batcher, Overloaded
from cnn.serve.guard import Guard
from cnn.serve.metrics import Counted, Metrics
from cnn.serve.page import page_html
from cnn.serve.protocol import RequestError, infer_response, model_metadata, parse_infer

@dataclass(frozen=True)
class Limits:
    """What one server accepts: serve-cnn's options."""

    max_batch: int = 32  # images in one model call
    max_wait_ms: float = 5.0  # how long the first request of a batch waits for others
    max_queue: int = 256  # requests in progress (being decoded or waiting for the model); beyond it 503
    timeout_s: float = 30.0  # from a request's arrival at the model queue to its answer; beyond it 504
    max_bytes: int = 20_000_000  # a request body's size
    read_timeout_s: float = 10.0  # to receive a request's whole body; beyond it 408
    token: str = None  # the bearer token every endpoint but the page and health needs; None: no token


def make_app(predictor, name, limits, test_top1=None):
    """The ASGI app serving `predictor` (cnn.runs.predictor.Predictor) as model `name`."""
    metrics = Metrics(name, lambda: batcher.depth(), lambda: batcher.admitted)
    batcher = Batcher(predictor.predict_on_batch, limits.max_batch, limits.max_wait_ms / 1000, limits.max_queue,
                      observe=metrics.model_call)
    decoder = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="decode")

    @asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(batcher.run())
        yield
        task.cancel()

    app = FastAPI(lifespan=lifespan, title="serve-cnn", docs_url=None, redoc_url=None, openapi_url=None)
    answers(app, metrics)
    size, classes, kind = predictor.image_size, predictor.classes, predictor.kind
    no_cam = None if kind == "flat" else f"no heatmap: this is {UNEXPLAINED[kind]}"
    page = page_html(name, kind, classes, test_top1, no_cam, limits.token is not None)

    async def decode(data, index=None):
        where = "" if index is None else f"image {index}: "
        try:
            return await asyncio.get_running_loop().run_in_executor(decoder, decode_bytes, data, (size, size))
        except ImageTooLarge as error:
            raise RequestError(413, f"{where}{error}") from None
        except ValueError as error:
            raise RequestError(422, f"{where}{error}") from None

    async def classify(pixels):
        return await asyncio.wait_for(batcher.submit(pixels), limits.timeout_s)

    async def explain(pixels, index):
        """{"cam": a PNG data URL of the top class's heatmap over the model's view, or None with "cam_note"}."""
        if predictor.explained is None:
            return {"cam": None, "cam_note": no_cam}
        heat = await batcher.on_model(heatmaps, predictor.explained.model, pixels[None], [index])
        png = io.BytesIO()
        Image.fromarray(overlay(pixels, heat[0])).save(png, "PNG")
        return {"cam": "data:image/png;base64," + base64.b64encode(png.getvalue()).decode(), "cam_note": None}

    def known(model):
        if model != name:
            raise RequestError(404, f"no model {model!r} here; this server serves {name!r}")

    @app.get("/", response_class=HTMLResponse)
    async def index():
        return page

    @app.get("/v2/health/live")
    async def live():
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready():
        return {"ready": True}

    @app.get("/v2")
    async def server_metadata():
        return {"name": "serve-cnn", "version": "1", "extensions": []}

    @app.get("/v2/models/{model}")
    async def metadata(model: str):
        known(model)
        return model_metadata(name, classes, size, {"kind": kind, "test_top1": test_top1, "max_batch": limits.max_batch,
                                                    "tta": predictor.tta})

    @app.get("/v2/models/{model}/ready")
    async def model_ready(model: str):
        known(model)
        return {"name": name, "ready": True}

    @app.post("/v2/models/{model}/infer")
    async def infer(model: str, request: Request):
        known(model)
        content_type(request, "application/json")
        try:
            body = json.loads(await request.body())
        except ValueError:
            raise RequestError(400, "the body is not valid JSON") from None
        what, data = parse_infer(body, size)
        with batcher.admission():
            pixels = data if what == "pixels" else np.stack(
                await asyncio.gather(*(decode(item, i) for i, item in enumerate(data))))
            return infer_response(name, body.get("id"), await classify(pixels), classes)

    @app.post("/predict")
    async def predict(request: Request, top: int = 3, cam: bool = False):
        content_type(request, "multipart/form-data")
        if top < 1:
            raise RequestError(422, f"top={top}: must be 1 or more")
        upload = await one_file(request)
        data = await upload.read()
        if not data:
            raise RequestError(422, f"{upload.filename or 'the file'} is empty (0 bytes)")
        with batcher.admission():
            pixels = await decode(data)
            probs = (await classify(pixels[None]))[0]
        record = prediction_record(PurePath(upload.filename or "upload").name, top_classes(probs[None], classes,
                                                                                           top)[0])
        return [{**record, **(await explain(pixels, int(probs.argmax())) if cam else {})}]

    @app.get("/metrics")
    async def prometheus():
        return Response(metrics.text(), media_type="text/plain; version=0.0.4")

    return Counted(Guard(app, limits.token, limits.max_bytes, limits.read_timeout_s, full=batcher.full), metrics)


def content_type(request, expected):
    """Refuse (415) a request whose Content-Type is not `expected`."""
    given = request.headers.get("content-type", "")
    if given.split(";")[0].strip().lower() != expected:
        raise RequestError(415, f"Content-Type {given or 'missing'}; send {expected}")


async def one_file(request):
    """The one uploaded file of a multipart form; none or several is a RequestError."""
    try:
        form = await request.form()
    except Exception as error:  # python-multipart's parse errors have no common base class of their own
        raise RequestError(400, f"the multipart body could not be parsed ({error})") from None
    files = [value for _, value in form.multi_items() if hasattr(value, "read")]
    if len(files) != 1:
        raise RequestError(422, f"send exactly one image file (form field 'file'); this request has {len(files)}")
    return files[0]


def answers(app, metrics):
    """Every refusal as {"error": ...} with its status, and every answer counted and timed in `metrics`."""

    def refuse(status, message, headers=None):
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    app.add_exception_handler(RequestError, lambda request, error: refuse(error.status, str(error)))
    app.add_exception_handler(Overloaded, lambda request, error: refuse(503, AT_CAPACITY, RETRY))
    app.add_exception_handler(TimeoutError, lambda request, error: refuse(
        504, "the model did not answer in time; retry shortly"))
    app.add_exception_handler(HTTPException, lambda request, error: refuse(error.status_code, str(error.detail)))
    app.add_exception_handler(RequestValidationError, lambda request, error: refuse(
        422, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())))

