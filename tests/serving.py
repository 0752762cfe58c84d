"""A real serve-cnn process on a free loopback port, for the tests (not a mocked app), and small HTTP helpers."""
import requests
from prometheus_client.parser import text_string_to_metric_families

from cnn.training.distribute.strategy import free_loopback_ports
from conftest import start_cnn, wait_for

TOKEN = "s3cret-token"


class Server:
    """`serve-cnn RUN --port P ARGS...` started in `cwd`; `url(path)`, `get`/`post` with the token when it has one."""

    def __init__(self, run, cwd, *args, port=None, token=None):
        self.port, self.token = port or free_loopback_ports(1)[0], token
        extra = list(args)
        if token:
            (cwd / "token.txt").write_text(token + "\n")
            extra += ["--token-file", str(cwd / "token.txt")]
        self.process = start_cnn(["serve", str(run), "--port", str(self.port), *extra], cwd=cwd)
        if not wait_for(self.ready, self.process, seconds=180):
            self.process.kill()
            raise AssertionError(f"serve-cnn did not start: {self.process.communicate()[1][-2000:]}")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def headers(self, **extra):
        return {**({"Authorization": f"Bearer {self.token}"} if self.token else {}), **extra}

    def ready(self):
        try:
            return requests.get(self.url("/v2/health/ready"), timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    def get(self, path, **kw):
        return requests.get(self.url(path), headers=self.headers(**kw.pop("headers", {})), timeout=60, **kw)

    def post(self, path, **kw):
        return requests.post(self.url(path), headers=self.headers(**kw.pop("headers", {})), timeout=60, **kw)

    def samples(self, name):
        """[(labels, value)] of the samples called `name` in /metrics (prometheus_client's own parser)."""
        return [(sample.labels, sample.value) for family in text_string_to_metric_families(self.get("/metrics").text)
                for sample in family.samples if sample.name == name]

    def model_calls(self):
        """serve_model_calls_total from /metrics."""
        [(_, calls)] = self.samples("serve_model_calls_total")
        return calls

    def stop(self):
        self.process.terminate()
        try:
            return self.process.wait(timeout=60)
        finally:
            self.process.stdout.close()
            self.process.stderr.close()
