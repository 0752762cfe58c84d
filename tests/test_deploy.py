"""deploy/'s files are well-formed and ask serve-cnn only for options it has (they cannot run here: no cluster)."""
import re
from pathlib import Path

import yaml

from cnn.cli import serve_main

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def serve_flags(capsys):
    """The flags serve-cnn --help lists."""
    try:
        serve_main(["--help"])
    except SystemExit:
        pass
    return set(re.findall(r"--[a-z-]+", capsys.readouterr().out))


def test_the_inferenceservice_manifest_is_valid_kserve_yaml(capsys):
    [service] = list(yaml.safe_load_all((DEPLOY / "inferenceservice.yaml").read_text()))
    assert service["apiVersion"] == "serving.kserve.io/v1beta1" and service["kind"] == "InferenceService"
    [container] = service["spec"]["predictor"]["containers"]
    args = container["args"]
    assert args[0] == "serve-cnn" and {a for a in args if a.startswith("--")} <= serve_flags(capsys)
    port = int(args[args.index("--port") + 1])
    assert container["ports"][0]["containerPort"] == port
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": port}
    mount = container["volumeMounts"][0]["mountPath"]
    assert args[args.index("--token-file") + 1].startswith(mount + "/")  # the token the Secret mounts


def test_the_dockerfile_runs_serve_cnn_with_a_token(capsys):
    text = (DEPLOY / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M).group(1)
    args = yaml.safe_load(cmd)  # a JSON array is YAML
    assert args[0] == "serve-cnn" and {a for a in args if a.startswith("--")} <= serve_flags(capsys)
    assert "--token-file" in args and '".[serve]"' in text
