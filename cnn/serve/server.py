"""serve-cnn: open the run once, check the address, the token and the port, then run the app on uvicorn until
SIGTERM or Ctrl-C (uvicorn stops taking requests, finishes those in flight, and the command exits 0). With
--workers N, uvicorn runs N processes, each with its own copy of the model and its own batcher."""
import ipaddress
import json
import os
import re
import signal
import socket
from pathlib import Path

from cnn.runs.predictor import open_run
from cnn.serve.app import Limits, make_app
from common.console import writer
from common.errors import UsageError

log = writer("serve-cnn")
SETTINGS = "SERVE_CNN_SETTINGS"  # how the parent hands a --workers process its settings


def serve(source, *, host="127.0.0.1", port=8080, workers=1, token_file=None, tta="none", **limits):
    """Serve the run or export at `source` on http://host:port/ until stopped; `limits`: cnn.serve.app.Limits'
    fields (max_batch, max_wait_ms, max_queue, timeout_s, max_bytes, read_timeout_s)."""
    import uvicorn

    token = read_token(token_file)
    if token is None and not loopback(host):
        raise UsageError(f"--host {host} can be reached from other machines; give --token-file F (a file holding "
                         "a bearer token) or serve on 127.0.0.1")
    check_port(host, port)
    settings = {"source": str(source), "tta": tta, "limits": {**limits, "token": token}}
    config = dict(host=host, port=port, log_level="warning", access_log=False, timeout_graceful_shutdown=30)
    # uvicorn stops gracefully on SIGTERM, then raises the signal again under the handler it found: a no-op here,
    # so a stopped server ends with status 0, as a service manager expects.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    if workers == 1:
        app, described = app_from(settings)
        log(f"serving {described} at http://{host}:{port}/ (Ctrl-C or SIGTERM stops it)")
        uvicorn.Server(uvicorn.Config(app, **config)).run()
        return
    os.environ[SETTINGS] = json.dumps(settings)
    log(f"serving {source} at http://{host}:{port}/ with {workers} worker processes (Ctrl-C or SIGTERM stops it)")
    uvicorn.run("cnn.serve.server:app_from_environment", factory=True, workers=workers, **config)


def app_from(settings):
    """(the app, a line describing what it serves) for serve()'s settings: the run opened and checked once."""
    source = Path(settings["source"])
    predictor = open_run(source, tta=settings["tta"])
    name = model_name(source)
    limits = Limits(**settings["limits"])
    app = make_app(predictor, name, limits, test_top1=recorded_top1(source))
    return app, (f"{source} as model {name!r} ({predictor.kind}, {len(predictor.classes)} classes, "
                 f"{predictor.image_size} px, batches of up to {limits.max_batch})")


def app_from_environment():
    """uvicorn's factory in each --workers process."""
    return app_from(json.loads(os.environ[SETTINGS]))[0]


def model_name(source):
    """The model's name in the protocol's URLs: the folder's name, with anything but letters, digits, '.', '_'
    and '-' replaced."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", Path(source).resolve().name) or "model"


def recorded_top1(source):
    """The test top-1 that train-cnn recorded in the folder's metrics.json, or None."""
    try:
        return float(json.loads((Path(source) / "metrics.json").read_text())["top1"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_token(token_file):
    """The bearer token in `token_file` (surrounding whitespace dropped), or None without one."""
    if token_file is None:
        return None
    try:
        token = Path(token_file).read_text().strip()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"--token-file {token_file}: cannot be read ({getattr(error, 'strerror', error)})") from None
    if not token or any(c.isspace() for c in token):
        raise UsageError(f"--token-file {token_file}: must hold one token (no spaces), not "
                         f"{'nothing' if not token else 'several words'}")
    return token


def loopback(host):
    """Whether `host` is this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port(host, port):
    """Refuse a port another process listens on, before the model is loaded."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise UsageError(f"cannot listen on {host}:{port} ({error.strerror}); pick another --port or --host") \
                from None
