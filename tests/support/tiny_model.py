"""A tiny, hand-built ONNX model that honours the FreshClaim model contract.

It "sees" colour only: produce from the share of apple-red / banana-yellow / orange pixels,
"rotten" from the share of dark-brown pixels, out-of-distribution when the photo is mostly blue.
Photos from :mod:`data.synthetic` therefore get predictable scores, so tests of the claim
path need neither torch nor the trained model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from claims_api.inference.metadata import (
    AutoApprove,
    InputSpec,
    Labels,
    ModelMetadata,
    OodGate,
    ThresholdCertificate,
)

SIZE = 64
CAM_SIZE = 8
PRODUCE = ["apple", "banana", "orange", "other"]


def tiny_metadata(version: str = "tiny-test-1", threshold: float = 0.9) -> ModelMetadata:
    return ModelMetadata(
        model_version=version,
        input=InputSpec(size=SIZE, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)),
        labels=Labels(produce=PRODUCE, condition=["fresh", "rotten"]),
        auto_approve=AutoApprove(
            threshold=threshold,
            produce_confidence_min=0.8,
            certificate=ThresholdCertificate(
                target_precision=0.99, split="synthetic", precision=1.0, recall=1.0, support=0
            ),
        ),
        ood=OodGate(method="blue-share", threshold=0.5),
        data_fingerprint="synthetic",
    )


def _const(name: str, value) -> onnx.NodeProto:
    return helper.make_node(
        "Constant", [], [name], value=numpy_helper.from_array(np.asarray(value, np.float32), name)
    )


def _mask(nodes: list, name: str, conditions: list[tuple[str, int, float]]) -> str:
    """A 0/1 map of pixels where every (op, channel, value) condition holds."""
    parts = []
    for i, (op, channel, value) in enumerate(conditions):
        ch, thr, out = f"{name}_c{i}", f"{name}_t{i}", f"{name}_b{i}"
        nodes.append(_const(f"{name}_idx{i}", [channel]))
        nodes.append(
            helper.make_node("Cast", [f"{name}_idx{i}"], [f"{name}_i{i}"], to=TensorProto.INT64)
        )
        nodes.append(helper.make_node("Gather", ["image", f"{name}_i{i}"], [ch], axis=1))
        nodes.append(_const(thr, value))
        nodes.append(helper.make_node(op, [ch, thr], [out]))
        parts.append(out)
    current = parts[0]
    for i, part in enumerate(parts[1:], 1):
        nxt = f"{name}_and{i}"
        nodes.append(helper.make_node("And", [current, part], [nxt]))
        current = nxt
    nodes.append(helper.make_node("Cast", [current], [name], to=TensorProto.FLOAT))
    return name  # [N, 1, H, W]


def build_tiny_model(path: Path, metadata: ModelMetadata | None = None) -> Path:
    metadata = metadata or tiny_metadata()
    nodes: list[onnx.NodeProto] = []
    apple = _mask(nodes, "apple", [("Greater", 0, 0.55), ("Less", 1, 0.3), ("Less", 2, 0.35)])
    banana = _mask(nodes, "banana", [("Greater", 0, 0.7), ("Greater", 1, 0.6), ("Less", 2, 0.35)])
    orange = _mask(
        nodes,
        "orange",
        [("Greater", 0, 0.75), ("Greater", 1, 0.4), ("Less", 1, 0.6), ("Less", 2, 0.3)],
    )
    rot = _mask(nodes, "rot", [("Less", 0, 0.4), ("Less", 1, 0.3), ("Less", 2, 0.2)])
    blue = _mask(nodes, "blue", [("Greater", 2, 0.5), ("Less", 0, 0.4)])

    share = {}
    for mask in (apple, banana, orange, rot, blue):
        share[mask] = f"{mask}_share"
        nodes.append(
            helper.make_node("ReduceMean", [mask], [share[mask]], axes=[1, 2, 3], keepdims=0)
        )

    # Produce: fruit shares scaled up; "other" wins when no fruit colour covers 5% of the photo.
    nodes.append(
        helper.make_node(
            "Concat", [share[apple], share[banana], share[orange]], ["fruit_shares"], axis=0
        )
    )
    nodes.append(_const("fruit_scale", 200.0))
    nodes.append(helper.make_node("Mul", ["fruit_shares", "fruit_scale"], ["fruit_logits_t"]))
    nodes.append(_const("other_logit", [10.0]))
    nodes.append(helper.make_node("Shape", [share[apple]], ["n_shape"]))
    nodes.append(helper.make_node("Expand", ["other_logit", "n_shape"], ["other_logits"]))
    nodes.append(helper.make_node("Unsqueeze", ["other_logits", "zero_axis"], ["other_row"]))
    nodes.append(
        helper.make_node(
            "Constant", [], ["zero_axis"], value=numpy_helper.from_array(np.array([0], np.int64))
        )
    )
    nodes.append(helper.make_node("Reshape", ["fruit_logits_t", "fruit_shape"], ["fruit_rows"]))
    nodes.append(
        helper.make_node(
            "Constant",
            [],
            ["fruit_shape"],
            value=numpy_helper.from_array(np.array([3, -1], np.int64)),
        )
    )
    nodes.append(helper.make_node("Concat", ["fruit_rows", "other_row"], ["produce_t"], axis=0))
    nodes.append(helper.make_node("Transpose", ["produce_t"], ["produce_logits"], perm=[1, 0]))

    # Condition: rotten when dark-brown pixels cover more than 2% of the photo.
    nodes.append(_const("rot_offset", 0.02))
    nodes.append(helper.make_node("Sub", [share[rot], "rot_offset"], ["rot_centred"]))
    nodes.append(_const("rot_scale", 400.0))
    nodes.append(helper.make_node("Mul", ["rot_centred", "rot_scale"], ["rot_logit"]))
    nodes.append(helper.make_node("Neg", ["rot_logit"], ["fresh_logit"]))
    nodes.append(helper.make_node("Unsqueeze", ["rot_logit", "one_axis"], ["rot_col"]))
    nodes.append(helper.make_node("Unsqueeze", ["fresh_logit", "one_axis"], ["fresh_col"]))
    nodes.append(
        helper.make_node(
            "Constant", [], ["one_axis"], value=numpy_helper.from_array(np.array([1], np.int64))
        )
    )
    nodes.append(helper.make_node("Concat", ["fresh_col", "rot_col"], ["condition_logits"], axis=1))

    nodes.append(helper.make_node("Identity", [share[blue]], ["ood_score"]))
    pool = SIZE // CAM_SIZE
    nodes.append(
        helper.make_node(
            "AveragePool", [rot], ["cam4"], kernel_shape=[pool, pool], strides=[pool, pool]
        )
    )
    nodes.append(helper.make_node("Squeeze", ["cam4", "one_axis"], ["cam"]))

    # Constants first: ONNX wants nodes in topological order.
    nodes.sort(key=lambda node: node.op_type != "Constant")
    graph = helper.make_graph(
        nodes,
        "freshclaim-tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [
            helper.make_tensor_value_info("produce_logits", TensorProto.FLOAT, ["N", len(PRODUCE)]),
            helper.make_tensor_value_info("condition_logits", TensorProto.FLOAT, ["N", 2]),
            helper.make_tensor_value_info("ood_score", TensorProto.FLOAT, ["N"]),
            helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["N", CAM_SIZE, CAM_SIZE]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"freshclaim": metadata.to_json()})
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path
