"""template.yaml as CloudFormation gets it: after SAM's transform, and resolved for one set of parameters.

``transformed_template()`` runs samtranslator (the library ``sam`` and CloudFormation use), so tests see the
roles, permissions and event configurations SAM generates. ``TemplateResolver`` evaluates the template's
conditions (``Fn::Equals``/``Not``/``And``/``Or``, ``Condition``) for given parameters (the rest from their
defaults), keeps only the resources whose ``Condition`` holds, chooses each ``Fn::If`` branch and drops
``AWS::NoValue``; every other intrinsic (``Ref`` included) is left as written, so a test can check which
resource or parameter a property names.
"""

from __future__ import annotations

import os
from typing import Any

from samtranslator.translator.transform import transform

from devkit.lambda_loader import load_template

BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
_NO_VALUE = object()


class _ManagedPolicies:
    """The one managed policy SAM attaches, without asking IAM for the list."""

    def load(self) -> dict[str, str]:
        return {"AWSLambdaBasicExecutionRole": BASIC_EXECUTION}


def transformed_template() -> dict[str, Any]:
    """The whole SAM-transformed template (code locations replaced: the transform wants uploaded artifacts)."""
    document = load_template()
    for resource in document["Resources"].values():
        for uri_key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if uri_key in resource.get("Properties", {}):
                resource["Properties"][uri_key] = "s3://artifacts/code.zip"
    region = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"  # the transform reads the region for ARNs
    try:
        return transform(document, {}, _ManagedPolicies())
    finally:
        if region is None:
            del os.environ["AWS_DEFAULT_REGION"]
        else:
            os.environ["AWS_DEFAULT_REGION"] = region


class TemplateResolver:
    """A template's conditions and ``Fn::If`` branches for one set of parameter values."""

    def __init__(self, template: dict[str, Any], **parameters: str) -> None:
        unknown = set(parameters) - set(template["Parameters"])
        assert not unknown, f"not parameters of the template: {unknown}"
        defaults = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
        self.parameters = {**defaults, **parameters}
        self.template = template

    def condition(self, name: str) -> bool:
        return self.truth(self.template["Conditions"][name])

    def truth(self, node: Any) -> bool:
        """A condition function (as in Conditions, or a rule's Assert) evaluated to a boolean."""
        ((function, argument),) = node.items()
        if function == "Condition":
            return self.condition(argument)
        if function == "Fn::Equals":
            left, right = (self._scalar(part) for part in argument)
            return left == right
        if function == "Fn::Not":
            return not self.truth(argument[0])
        if function == "Fn::And":
            return all(self.truth(part) for part in argument)
        if function == "Fn::Or":
            return any(self.truth(part) for part in argument)
        raise ValueError(f"not a condition function: {function}")

    def _scalar(self, node: Any) -> str:
        if isinstance(node, dict) and set(node) == {"Ref"}:
            return self.parameters[node["Ref"]]
        if isinstance(node, dict) and set(node) == {"Fn::Join"}:  # of a list parameter, to test it for emptiness
            delimiter, parts = node["Fn::Join"]
            items = self._scalar(parts).split(",") if isinstance(parts, dict) else [self._scalar(p) for p in parts]
            return delimiter.join(items)
        assert not isinstance(node, dict | list), f"cannot compare {node}"
        return str(node)

    def value(self, node: Any) -> Any:
        """``node`` with its ``Fn::If`` branches chosen and ``AWS::NoValue`` removed."""
        resolved = self._value(node)
        return None if resolved is _NO_VALUE else resolved

    def _value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in (self._value(item) for item in node) if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if node == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
        if set(node) == {"Fn::If"}:
            name, when_true, when_false = node["Fn::If"]
            return self._value(when_true if self.condition(name) else when_false)
        resolved = {key: self._value(item) for key, item in node.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def resources(self) -> dict[str, dict[str, Any]]:
        """The resources CloudFormation would create for these parameters, resolved."""
        return {
            name: self.value(resource)
            for name, resource in self.template["Resources"].items()
            if "Condition" not in resource or self.condition(resource["Condition"])
        }
