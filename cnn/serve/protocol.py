"""The Open Inference Protocol (KServe V2, REST) as serve-cnn speaks it: one input, either encoded image files
("image", BYTES, shape [N], each element base64) or decoded pixels ("pixels", FP32, shape [N, S, S, 3], 0-255);
outputs "probabilities" (FP32 [N, C], calibrated) and "label" (BYTES [N], the top class). Pure numpy: the server
maps RequestError's status onto the HTTP answer."""
import base64
import binascii

import numpy as np

MAX_IMAGES = 256  # images in one request; more is 413 (send several requests: the server batches them anyway)
INPUTS = {"BYTES": "image", "FP32": "pixels"}


class RequestError(ValueError):
    """A request the protocol refuses: `status` is the HTTP status, the message says what to send instead."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def parse_infer(body, image_size):
    """(kind, data) of an infer request's JSON body: ("bytes", [encoded image, ...]) or ("pixels", float32
    [N, S, S, 3]); a RequestError names what is wrong."""
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise RequestError(422, 'expected {"inputs": [one tensor]}: "image" (BYTES, base64 image files) or "pixels" '
                                '(FP32 [N, S, S, 3])')
    tensor = inputs[0]
    datatype, shape, data = tensor.get("datatype"), tensor.get("shape"), tensor.get("data")
    if datatype not in INPUTS:
        raise RequestError(422, f"datatype {datatype!r} is not accepted; send BYTES (image files) or FP32 (pixels)")
    if not isinstance(shape, list) or not shape or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise RequestError(422, f"shape {shape!r} is not a list of sizes")
    if shape[0] > MAX_IMAGES:
        raise RequestError(413, f"{shape[0]} images in one request; at most {MAX_IMAGES}: send several requests")
    if not isinstance(data, list):
        raise RequestError(422, "data must be a list")
    if datatype == "BYTES":
        return "bytes", _encoded(shape, data)
    return "pixels", _pixels(shape, data, image_size)


def _encoded(shape, data):
    """The image files of a BYTES tensor (shape [N], base64 strings)."""
    if len(shape) != 1 or len(data) != shape[0] or not data:
        raise RequestError(422, f"a BYTES input has shape [N] and N base64 strings; got shape {shape} and "
                                f"{len(data)} element(s)")
    try:
        return [base64.b64decode(item, validate=True) for item in data]
    except (TypeError, ValueError, binascii.Error):
        raise RequestError(422, "each BYTES element must be a base64-encoded image file") from None


def _pixels(shape, data, image_size):
    """The pixels of an FP32 tensor, checked: shape [N, S, S, 3] at the model's size, finite values in 0..255."""
    expected = [image_size, image_size, 3]
    if len(shape) != 4 or shape[1:] != expected or shape[0] < 1:
        raise RequestError(422, f"FP32 pixels must have shape [N, {image_size}, {image_size}, 3] (this model's "
                                f"input); got {shape}")
    try:
        pixels = np.asarray(data, dtype=np.float32).reshape(shape)
    except (TypeError, ValueError):
        raise RequestError(422, f"data must hold {int(np.prod(shape))} numbers for shape {shape}") from None
    if not np.isfinite(pixels).all():
        raise RequestError(422, "pixels must be finite numbers (no NaN or infinity)")
    if pixels.min() < 0 or pixels.max() > 255:
        raise RequestError(422, "pixels must be in 0..255 (the model rescales them itself)")
    return pixels


def infer_response(name, request_id, probs, classes):
    """The infer response body for probabilities [N, C]."""
    probs = np.asarray(probs, np.float64)
    response = {"model_name": name, "outputs": [
        {"name": "probabilities", "shape": list(probs.shape), "datatype": "FP32", "data": probs.ravel().tolist()},
        {"name": "label", "shape": [len(probs)], "datatype": "BYTES",
         "data": [classes[i] for i in probs.argmax(axis=1)]}]}
    return {**response, "id": request_id} if request_id is not None else response


def model_metadata(name, classes, image_size, parameters):
    """The model metadata body (GET /v2/models/NAME): the two inputs it takes, its outputs, and `parameters`."""
    return {"name": name, "versions": ["1"], "platform": "tensorflow_keras",
            "inputs": [{"name": "image", "datatype": "BYTES", "shape": [-1]},
                       {"name": "pixels", "datatype": "FP32", "shape": [-1, image_size, image_size, 3]}],
            "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, len(classes)]},
                        {"name": "label", "datatype": "BYTES", "shape": [-1]}],
            "parameters": {"classes": list(classes), **parameters}}
