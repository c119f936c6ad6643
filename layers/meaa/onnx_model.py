"""One small wrapper around an onnxruntime session, shared by the detector and classifier."""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort


def make_session_options(threads: int) -> ort.SessionOptions:
    """Sequential, ``threads`` intra-op threads, full graph optimisation, no spinning, no memory patterns.

    Spinning threads burn the CPU that Lambda bills for while a request waits on I/O. Memory patterns
    are cached per input shape, and P-Net sees a new shape at every pyramid level of every frame size:
    without them peak RSS is lower at the same speed (``make bench``).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_mem_pattern = False
    options.log_severity_level = 3
    return options


class OnnxModel:
    """An ONNX model with named outputs: ``model(x)`` returns ``{output_name: array}``.

    Input and output names are read from the session, never assumed by position.
    """

    def __init__(self, path: str | os.PathLike[str], threads: int) -> None:
        self.path = os.fspath(path)
        self.session = ort.InferenceSession(
            self.path, sess_options=make_session_options(threads), providers=["CPUExecutionProvider"]
        )
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ValueError(f"{self.path}: expected one input, found {len(inputs)}")
        self.input_name = inputs[0].name
        self.input_shape = tuple(inputs[0].shape)
        self.output_names = [output.name for output in self.session.get_outputs()]

    def __call__(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        values = self.session.run(self.output_names, {self.input_name: batch})
        return dict(zip(self.output_names, values, strict=True))
