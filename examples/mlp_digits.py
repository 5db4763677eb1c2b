"""A small MLP on scikit-learn's 8x8 handwritten digits, streamed live to Losslens.

    python examples/mlp_digits.py                     # the demo: a healthy ~30 s run
    python examples/mlp_digits.py --lr 0.5            # diverges
    python examples/mlp_digits.py --activation sigmoid --zero-init --unscaled-inputs
    python examples/mlp_digits.py --fast --offline    # a few seconds, spooled to disk

Its defaults are what ``losslens demo`` runs: 500 training digits, Adam at 1e-3, 80 epochs
paced to stream for about half a minute; the validation loss bottoms out and then creeps up
while the training loss keeps falling, so the train/val gap opens in the second half.
"""

from __future__ import annotations

import os
import sys
from collections import OrderedDict

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # the sibling helpers; the SDK of this checkout

import _common  # noqa: E402

N_CLASSES = 10


def load(train_size: int, seed: int, scaled: bool) -> tuple:
    """Digits as float tensors: (x_train, y_train, x_val, y_val), 500 fixed validation ones."""
    x, y = load_digits(return_X_y=True)
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=500, random_state=0, stratify=y)
    g = torch.Generator().manual_seed(seed)
    keep = torch.randperm(len(x_tr), generator=g)[:train_size].numpy()
    x_tr, y_tr = x_tr[keep], y_tr[keep]
    tensors = [torch.tensor(a, dtype=torch.float32) for a in (x_tr, x_va)]
    if scaled:
        tensors = _common.standardise(*tensors)
    return tensors[0], torch.tensor(y_tr), tensors[1], torch.tensor(y_va)


def build(activation: str, hidden: int = 128) -> nn.Module:
    act = _common.ACTIVATIONS[activation]
    return nn.Sequential(OrderedDict(
        fc1=nn.Linear(64, hidden), act1=act(), fc2=nn.Linear(hidden, hidden), act2=act(),
        out=nn.Linear(hidden, N_CLASSES)))


def run(argv=None) -> dict:
    args = _common.parser(__doc__.splitlines()[0], train_size=500, epochs=80, pace=0.02,
                          project="digits").parse_args(argv)
    if args.fast:
        args.epochs, args.pace = min(args.epochs, 3), 0.0
    torch.manual_seed(args.seed)
    data = load(args.train_size, args.seed, scaled=not args.unscaled_inputs)
    model = build(args.activation)
    config = {"model": "mlp", "n_classes": N_CLASSES, "hidden": 128}
    return _common.main(args, model, data, config)


if __name__ == "__main__":
    run()
