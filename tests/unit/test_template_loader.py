"""devkit/lambda_loader.py: handlers are imported from template.yaml's CodeUri/Handler/layers, afresh."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from devkit.aws import apply_environment, moto_environment
from devkit.lambda_loader import REPO_ROOT, function_spec, lambda_context, load_handler, load_template

TWO_FUNCTIONS = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    Handler: app.handler
    Layers: [!Ref SharedLayer]
    Environment:
      Variables:
        FROM_GLOBALS: "yes"
Resources:
  SharedLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layer/
  FirstFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: first
      Environment:
        Variables:
          TABLE: !Ref Table
  SecondFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: second
      Handler: app.other
      MemorySize: 2048
      Timeout: 42
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-t"
Outputs:
  Arn:
    Value: !GetAtt FirstFunction.Arn
"""


def _write_project(root: Path) -> Path:
    (root / "layer" / "shared_lib").mkdir(parents=True)
    (root / "layer" / "shared_lib" / "__init__.py").write_text("NAME = 'shared'\n")
    for name, function in (("first", "handler"), ("second", "other")):
        (root / name).mkdir()
        (root / name / "helper.py").write_text(f"WHO = {name!r}\n")
        (root / name / "app.py").write_text(
            textwrap.dedent(
                f"""
                import helper
                import shared_lib

                def {function}(event, context):
                    return {{"function": helper.WHO, "layer": shared_lib.NAME, "event": event}}
                """
            )
        )
    template = root / "template.yaml"
    template.write_text(TWO_FUNCTIONS)
    return template


def test_short_form_intrinsics_load_as_plain_data(tmp_path: Path) -> None:
    document = load_template(_write_project(tmp_path))
    assert document["Resources"]["FirstFunction"]["Properties"]["Environment"]["Variables"]["TABLE"] == {"Ref": "Table"}
    assert document["Resources"]["Table"]["Properties"]["TableName"] == {"Fn::Sub": "${AWS::StackName}-t"}
    assert document["Outputs"]["Arn"]["Value"] == {"Fn::GetAtt": ["FirstFunction", "Arn"]}


def test_spec_applies_globals_and_resolves_layer_paths(tmp_path: Path) -> None:
    template = _write_project(tmp_path)
    first = function_spec("FirstFunction", template)
    second = function_spec("SecondFunction", template)
    assert first.code_dir == (tmp_path / "first").resolve() and first.handler == "app.handler"
    assert second.handler == "app.other"
    assert first.layer_dirs == ((tmp_path / "layer").resolve(),)
    assert first.environment == {"FROM_GLOBALS": "yes"}  # !Ref values cannot be known offline


def test_repository_functions_resolve_to_their_directories(monkeypatch: pytest.MonkeyPatch) -> None:
    apply_environment(monkeypatch, moto_environment())  # the batch function needs its table's name
    for logical_id, directory, handler in (
        ("ApiFunction", "functions/api", "meaa_api.lambda_handler.handler"),
        ("BatchFunction", "functions/batch", "meaa_batch.handler.handler"),
    ):
        spec = function_spec(logical_id)
        assert spec.code_dir == REPO_ROOT / directory
        assert spec.handler == handler
        assert spec.layer_dirs == (REPO_ROOT / "layers",)
    batch = load_handler("BatchFunction")
    assert Path(sys.modules[batch.__module__].__file__) == REPO_ROOT / "functions/batch/meaa_batch/handler.py"
    assert load_handler("BatchFunction") is not batch, "each load is a fresh import, like a cold start"


def test_a_handler_outside_its_code_uri_is_refused(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        "Resources:\n  Misplaced:\n    Type: AWS::Serverless::Function\n"
        "    Properties: {CodeUri: elsewhere, Handler: meaa_api.schemas.ErrorResponse}\n"
    )
    with pytest.raises(ImportError, match="not under"):
        load_handler("Misplaced", template)


def test_context_carries_request_id_and_template_memory(tmp_path: Path) -> None:
    context = lambda_context("BatchFunction")
    assert context.function_name == "BatchFunction" and len(context.aws_request_id) == 36
    assert 0 < context.get_remaining_time_in_millis() <= context.timeout_s * 1000
    assert lambda_context().aws_request_id != context.aws_request_id
