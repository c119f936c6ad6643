"""Import a Lambda handler the way the Lambda runtime does, driven by ``template.yaml``.

Tests must exercise the deployed wiring, not a hand-picked import path: the function's ``CodeUri`` and
``Handler`` (with ``Globals``) come from the SAM template. The function packages (``meaa_api``,
``meaa_batch``) and the layer's (``meaa``, ``meaa_aws``) are installed (editable) in the venv, so the
handler's module is imported by name; the loader checks that it is the file under the template's
``CodeUri``, and imports it afresh (like a cold start, which reads the environment's settings again) by
dropping the function's package from ``sys.modules`` first. Layer packages stay cached, like in a warm
container, so models load once per test process.
"""

from __future__ import annotations

import importlib
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation short-form tags (``!Ref``, ``!Sub``, ...) as plain dicts."""


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    key = tag_suffix if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}"  # the two without "Fn::"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":  # "!GetAtt Res.Attr" is the short form of ["Res", "Attr"]
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {key: value}


_CloudFormationLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The SAM template as plain Python data (intrinsic functions become ``{"Ref": ...}`` etc.)."""
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass


@dataclass(frozen=True)
class FunctionSpec:
    """Where a function's code, handler and layers are, resolved from the template."""

    logical_id: str
    code_dir: Path
    handler: str
    layer_dirs: tuple[Path, ...]
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def module_name(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def function_name(self) -> str:
        return self.handler.rsplit(".", 1)[1]


def _layer_logical_id(reference: Any) -> str | None:
    """``!Ref MeaaLayer`` -> ``MeaaLayer``; ARNs of layers outside the template -> None."""
    if isinstance(reference, dict) and "Ref" in reference:
        return reference["Ref"]
    return None


def function_spec(function_logical_id: str, template_path: Path = TEMPLATE_PATH) -> FunctionSpec:
    """Resolve CodeUri, Handler (Globals apply), layer ContentUris and literal env vars of a function.

    Paths in the template are relative to the template's directory, as for ``sam build``.
    """
    template = load_template(template_path)
    base_dir = template_path.resolve().parent
    resources = template["Resources"]
    resource = resources.get(function_logical_id)
    if resource is None or resource.get("Type") != "AWS::Serverless::Function":
        raise KeyError(f"{function_logical_id} is not an AWS::Serverless::Function in {template_path}")
    global_function = (template.get("Globals") or {}).get("Function") or {}
    properties = {**global_function, **resource.get("Properties", {})}

    code_uri = properties.get("CodeUri")
    handler = properties.get("Handler")
    if not isinstance(code_uri, str) or not isinstance(handler, str):
        raise ValueError(f"{function_logical_id} needs a literal CodeUri and Handler")

    layer_dirs: list[Path] = []
    for reference in [*global_function.get("Layers", []), *resource.get("Properties", {}).get("Layers", [])]:
        layer_id = _layer_logical_id(reference)
        if layer_id is None:
            continue
        layer = resources[layer_id]
        content_dir = (base_dir / layer["Properties"]["ContentUri"]).resolve()
        # A built layer (sam build: infra/lambda_build.py) has its packages under python/, which Lambda
        # puts on sys.path as /opt/python; in the source tree the ContentUri itself holds them.
        layer_dirs.append(content_dir / "python" if (content_dir / "python").is_dir() else content_dir)

    environment: dict[str, str] = {}
    for source in (global_function, resource.get("Properties", {})):
        variables = ((source.get("Environment") or {}).get("Variables")) or {}
        for name, value in variables.items():
            if isinstance(value, (str, int, float, bool)):
                environment[name] = str(value)

    return FunctionSpec(
        logical_id=function_logical_id,
        code_dir=(base_dir / code_uri).resolve(),
        handler=handler,
        layer_dirs=tuple(dict.fromkeys(layer_dirs)),
        environment=environment,
    )


def load_handler(function_logical_id: str, template_path: Path = TEMPLATE_PATH) -> Callable[[dict, Any], Any]:
    """Import the function's handler module afresh (like a cold start) and return the handler callable."""
    spec = function_spec(function_logical_id, template_path)
    return getattr(load_function_module(function_logical_id, template_path), spec.function_name)


def load_function_module(function_logical_id: str, template_path: Path = TEMPLATE_PATH) -> ModuleType:
    """The function's handler module, imported afresh (e.g. for the API's ``app``)."""
    spec = function_spec(function_logical_id, template_path)
    package = spec.module_name.split(".", 1)[0]
    for module_name in list(sys.modules):
        if module_name == package or module_name.startswith(package + "."):
            del sys.modules[module_name]
    module = importlib.import_module(spec.module_name)
    module_file = Path(getattr(module, "__file__", "") or "").resolve()
    if spec.code_dir not in module_file.parents:
        raise ImportError(f"{spec.module_name} resolved to {module_file}, not under {spec.code_dir}")
    return module


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers use (request id, deadline, names)."""

    function_name: str = "test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024
    timeout_s: float = 60.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "2026/01/01/[$LATEST]test"
    _started: float = field(default_factory=time.monotonic, repr=False)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_s - elapsed) * 1000))


def lambda_context(function_logical_id: str | None = None, **overrides: Any) -> LambdaContext:
    """A fresh context (new request id) named after the function; memory/timeout from the template."""
    if function_logical_id is None:
        return LambdaContext(**overrides)
    template = load_template()
    global_function = (template.get("Globals") or {}).get("Function") or {}
    properties = {**global_function, **template["Resources"][function_logical_id].get("Properties", {})}
    values: dict[str, Any] = {
        "function_name": function_logical_id,
        "log_group_name": f"/aws/lambda/{function_logical_id}",
    }
    if isinstance(properties.get("MemorySize"), int):
        values["memory_limit_in_mb"] = properties["MemorySize"]
    if isinstance(properties.get("Timeout"), int):
        values["timeout_s"] = float(properties["Timeout"])
    values.update(overrides)
    return LambdaContext(**values)
