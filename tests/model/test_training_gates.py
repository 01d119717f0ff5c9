"""The out-of-distribution gates: the ONNX-bound graph computes the same score as the numpy
gate fitted in training, and a feature unlike every training photo scores as foreign."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="needs the train extra (torch, torchvision): pip install -e '.[train]'"
)
pytestmark = pytest.mark.torch

from training.model import (  # noqa: E402
    ExportModel,
    FreshClaimNet,
    KnnGate,
    MahalanobisGate,
    gate_from_state,
)


def _net_and_features(n: int = 12):
    torch.manual_seed(0)
    net = FreshClaimNet(3, 32, arch="tiny", pretrained=False).eval()
    images = torch.rand(n, 3, 32, 32)
    with torch.no_grad():
        features = net(images)[2].numpy()
    return net, images, features


def test_knn_gate_graph_matches_numpy_and_flags_foreign_features():
    net, images, features = _net_and_features()
    gate = KnnGate.fit(features[:8], ["a", "b"], k=3)
    with torch.no_grad():
        graph = ExportModel(net, gate)(images)[2].numpy()
    np.testing.assert_allclose(graph, gate.score(features), atol=1e-5)
    # ReLU features are non-negative: the opposite direction is unlike every training photo
    assert gate.score(-features[:1])[0] > gate.score(features[:8]).max()


def test_mahalanobis_gate_graph_matches_numpy():
    net, images, features = _net_and_features()
    gate = MahalanobisGate.fit(features, np.arange(12) % 2, ["a", "b"])
    with torch.no_grad():
        graph = ExportModel(net, gate)(images)[2].numpy()
    np.testing.assert_allclose(graph, gate.score(features), rtol=1e-3, atol=1e-3)


def test_gate_state_round_trip_and_legacy_checkpoints():
    _, _, features = _net_and_features()
    knn = gate_from_state(KnnGate.fit(features, ["a"], k=2).state())
    assert isinstance(knn, KnnGate) and knn.k == 2
    legacy = MahalanobisGate.fit(features, np.zeros(12, dtype=int), ["a"]).state()
    assert "method" not in legacy  # written before the kNN gate existed
    assert isinstance(gate_from_state(legacy), MahalanobisGate)
