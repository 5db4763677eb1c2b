"""What the example scripts share: the command line, the run, the training loop.

Each example builds its data and model and calls :func:`main`. Fault-injecting flags
(``--lr``, ``--batch-size``, ``--activation``, ``--zero-init``, ``--unscaled-inputs``,
``--decay-at``/``--decay-factor``, ``--train-size``, ``--epochs``) make runs that the Losslens
diagnoses should recognise.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import nn

import client_sdk

ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


def parser(description: str, **defaults) -> argparse.ArgumentParser:
    """The flags every example takes; ``defaults`` overrides their default values."""
    d = {"lr": 1e-3, "batch_size": 32, "activation": "relu", "train_size": 1000, "epochs": 10,
         "every": 10, "eval_every": 20, "pace": 0.0, "project": "examples", "name": None}
    d.update(defaults)
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--lr", type=float, default=d["lr"], help="learning rate (Adam)")
    ap.add_argument("--batch-size", type=int, default=d["batch_size"])
    ap.add_argument("--activation", choices=sorted(ACTIVATIONS), default=d["activation"])
    ap.add_argument("--zero-init", action="store_true", help="initialise all weights to 0")
    ap.add_argument("--unscaled-inputs", action="store_true",
                    help="feed raw, unnormalised inputs")
    ap.add_argument("--decay-at", type=int, default=None, metavar="STEP",
                    help="multiply the LR by --decay-factor from this step on")
    ap.add_argument("--decay-factor", type=float, default=0.1)
    ap.add_argument("--train-size", type=int, default=d["train_size"],
                    help="number of training examples")
    ap.add_argument("--epochs", type=int, default=d["epochs"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--every", type=int, default=d["every"], help="watch(): log every N steps")
    ap.add_argument("--eval-every", type=int, default=d["eval_every"],
                    help="validate every N steps")
    ap.add_argument("--pace", type=float, default=d["pace"],
                    help="seconds to sleep after each step (to watch a run live)")
    ap.add_argument("--fast", action="store_true", help="a short run (tests, smoke checks)")
    ap.add_argument("--url", default=None, help="server URL (default $LOSSLENS_URL)")
    ap.add_argument("--project", default=d["project"])
    ap.add_argument("--name", default=d["name"])
    ap.add_argument("--offline", action="store_true",
                    help="only spool to disk; upload later with `losslens sync`")
    return ap


def standardise(train: torch.Tensor, *others: torch.Tensor, per_feature: bool = True) -> list:
    """Centre and scale with the training set's statistics (applied to every split)."""
    dims = 0 if per_feature else None
    mean = train.mean(dim=dims, keepdim=per_feature) if per_feature else train.mean()
    std = train.std(dim=dims, keepdim=per_feature) if per_feature else train.std()
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    return [(t - mean) / std for t in (train, *others)]


def zero_init(model: nn.Module) -> None:
    """Set every weight and bias of the layers (not of normalisation layers) to zero."""
    norm_types = (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, norm_types):
                continue
            for p in module.parameters(recurse=False):
                p.zero_()


def main(args: argparse.Namespace, model: nn.Module, data: tuple, config: dict,
         loss_fn: Callable | None = None) -> dict:
    """Train ``model`` on ``data`` = (x_train, y_train, x_val, y_val), streaming to Losslens.

    Logs ``loss`` every step and ``val/loss``, ``val/acc`` every ``--eval-every`` steps;
    ``watch()`` adds the layer, input, LR and system signals. Returns the last metrics.
    """
    torch.manual_seed(args.seed)
    if args.zero_init:
        zero_init(model)
    x_tr, y_tr, x_va, y_va = data
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    config = dict(config, lr=args.lr, batch_size=args.batch_size, optimizer="adam",
                  loss="cross_entropy", activation=args.activation, train_size=len(x_tr),
                  epochs=args.epochs, seed=args.seed, zero_init=args.zero_init,
                  unscaled_inputs=args.unscaled_inputs)
    if args.decay_at is not None:
        config.update(decay_at=args.decay_at, decay_factor=args.decay_factor)
    run = client_sdk.init(project=args.project, name=args.name, config=config, url=args.url,
                          mode="offline" if args.offline else None)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = None
    if args.decay_at is not None:
        decay_at, factor = args.decay_at, args.decay_factor
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: factor if s >= decay_at else 1.0)
    client_sdk.watch(model, opt, every=args.every, loss_fn=loss_fn)
    gen = torch.Generator().manual_seed(args.seed)
    step, last = 0, {}
    try:
        for _ in range(args.epochs):
            order = torch.randperm(len(x_tr), generator=gen)
            for i in range(0, len(x_tr), args.batch_size):
                idx = order[i:i + args.batch_size]
                model.train()
                loss = loss_fn(model(x_tr[idx]), y_tr[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                client_sdk.log({"loss": loss.item()}, step=step)
                if step % args.eval_every == 0:
                    last = evaluate(model, loss_fn, x_va, y_va)
                    client_sdk.log(last, step=step)
                step += 1
                if args.pace:
                    time.sleep(args.pace)
        last = evaluate(model, loss_fn, x_va, y_va)
        client_sdk.log(last, step=max(step - 1, 0))
    except BaseException:
        client_sdk.unwatch()
        client_sdk.finish(status="failed")
        raise
    client_sdk.unwatch()
    client_sdk.finish()
    print(f"run {run.id}: {step} steps, val/loss {last['val/loss']:.4f}, "
          f"val/acc {last['val/acc']:.3f}")
    return last


def evaluate(model: nn.Module, loss_fn: Callable, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Validation loss and accuracy over the whole validation set (one batch)."""
    model.eval()
    with torch.no_grad():
        out = model(x)
        return {"val/loss": float(loss_fn(out, y)),
                "val/acc": float((out.argmax(dim=1) == y).float().mean())}
