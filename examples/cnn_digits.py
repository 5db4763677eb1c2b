"""A small CNN (conv, batch norm, pooling) on scikit-learn's 8x8 digits, streamed to Losslens.

    python examples/cnn_digits.py                     # healthy, a few seconds
    python examples/cnn_digits.py --batch-size 2      # batch norm on tiny batches
    python examples/cnn_digits.py --zero-init         # symmetric weights: nothing learns
    python examples/cnn_digits.py --decay-at 50 --decay-factor 0.01   # LR decayed too early
"""

from __future__ import annotations

import os
import sys
from collections import OrderedDict

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]  # the sibling helpers; the SDK of this checkout

import _common  # noqa: E402
from mlp_digits import N_CLASSES, load  # noqa: E402


def build(activation: str) -> nn.Module:
    act = _common.ACTIVATIONS[activation]
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(1, 16, 3, padding=1, bias=False), bn1=nn.BatchNorm2d(16), act1=act(),
        conv2=nn.Conv2d(16, 32, 3, padding=1, bias=False), bn2=nn.BatchNorm2d(32), act2=act(),
        pool=nn.MaxPool2d(2), flatten=nn.Flatten(), out=nn.Linear(32 * 4 * 4, N_CLASSES)))


def run(argv=None) -> dict:
    args = _common.parser(__doc__.splitlines()[0], train_size=1000, epochs=8,
                          project="digits").parse_args(argv)
    if args.fast:
        args.epochs, args.pace = min(args.epochs, 2), 0.0
    torch.manual_seed(args.seed)
    x_tr, y_tr, x_va, y_va = load(args.train_size, args.seed, scaled=False)
    x_tr, x_va = x_tr.view(-1, 1, 8, 8), x_va.view(-1, 1, 8, 8)
    if not args.unscaled_inputs:
        x_tr, x_va = _common.standardise(x_tr, x_va, per_feature=False)
    model = build(args.activation)
    config = {"model": "cnn", "n_classes": N_CLASSES}
    return _common.main(args, model, (x_tr, y_tr, x_va, y_va), config)


if __name__ == "__main__":
    run()
