"""Datasets (no download) and small models for the diagnosis benchmark."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn import datasets
from torch import nn


@dataclass
class Dataset:
    """Train/validation tensors of one classification task."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    n_classes: int


def _split(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, n_train: int | None):
    order = rng.permutation(len(x))
    n_val = len(x) // 4
    val, train = order[:n_val], order[n_val:]
    if n_train is not None:
        train = train[:n_train]
    return x[train], y[train], x[val], y[val]


def _seq_task(rng: np.random.Generator, n: int = 3000, length: int = 16, vocab: int = 4):
    """Which of `vocab` tokens is the most frequent in a random sequence (ties: lowest)."""
    seqs = rng.integers(0, vocab, size=(n, length))
    counts = np.stack([(seqs == t).sum(axis=1) for t in range(vocab)], axis=1)
    return seqs, counts.argmax(axis=1)


def load(name: str, seed: int, *, n_train: int | None = None, scale: float = 1.0,
         offset: float = 0.0, shuffle_labels: bool = False) -> Dataset:
    """Load task `name`, standardised with the training split's statistics.

    `scale`/`offset` are applied after standardising (the unscaled-input fault);
    `shuffle_labels` permutes the training labels (the not-learning fault).
    """
    rng = np.random.default_rng(seed)
    if name == "seq":
        x, y = _seq_task(rng)
        xt, yt, xv, yv = _split(x, y, rng, n_train)
        as_x = torch.long
    else:
        if name == "digits":
            x, y = datasets.load_digits(return_X_y=True)
        elif name == "cancer":
            x, y = datasets.load_breast_cancer(return_X_y=True)
        elif name == "wine":
            x, y = datasets.load_wine(return_X_y=True)
        elif name == "moons":
            x, y = datasets.make_moons(n_samples=2000, noise=0.25, random_state=seed)
        elif name == "hard":
            x, y = datasets.make_classification(
                n_samples=3000, n_features=20, n_informative=8, n_classes=4, flip_y=0.15,
                random_state=seed)
        else:
            raise ValueError(name)
        x = x.astype(np.float64)
        xt, yt, xv, yv = _split(x, y, rng, n_train)
        mean, std = xt.mean(axis=0), xt.std(axis=0)
        std = np.where(std < 1e-6, 1.0, std)  # constant pixels stay constant
        xt, xv = (xt - mean) / std * scale + offset, (xv - mean) / std * scale + offset
        as_x = torch.float32
    if shuffle_labels:
        yt = rng.permutation(yt)
    n_classes = int(max(yt.max(), yv.max()) + 1)
    return Dataset(torch.tensor(xt, dtype=as_x), torch.tensor(yt, dtype=torch.long),
                   torch.tensor(xv, dtype=as_x), torch.tensor(yv, dtype=torch.long), n_classes)


_ACTS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}


class MLP(nn.Module):
    """`depth` hidden layers named fc1.., act1.., then `out`."""

    def __init__(self, n_in: int, n_out: int, width: int = 64, depth: int = 2,
                 act: str = "relu", dropout: float = 0.0):
        super().__init__()
        layers: list[tuple[str, nn.Module]] = []
        d = n_in
        for i in range(1, depth + 1):
            layers.append((f"fc{i}", nn.Linear(d, width)))
            layers.append((f"act{i}", _ACTS[act]()))
            if dropout:
                layers.append((f"drop{i}", nn.Dropout(dropout)))
            d = width
        for name, module in layers:
            self.add_module(name, module)
        self.out = nn.Linear(d, n_out)
        self._names = [name for name, _ in layers] + ["out"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self._names:
            x = getattr(self, name)(x)
        return x


class CNN(nn.Module):
    """A small convnet for 8x8 digits."""

    def __init__(self, n_out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.act2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.out = nn.Linear(16 * 4 * 4, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(-1, 1, 8, 8)
        x = self.pool(self.act2(self.conv2(self.act1(self.conv1(x)))))
        return self.out(x.flatten(1))


class GRUNet(nn.Module):
    """Embedding, one recurrent layer (GRU, LSTM or tanh RNN), a tanh projection, a head."""

    def __init__(self, vocab: int, n_out: int, hidden: int = 32, cell: str = "gru"):
        super().__init__()
        self.embed = nn.Embedding(vocab, 16)
        if cell == "rnn_relu":
            self.rnn = nn.RNN(16, hidden, batch_first=True, nonlinearity="relu")
        else:
            cls = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}[cell]
            self.rnn = cls(16, hidden, batch_first=True)
        self.proj = nn.Linear(hidden, hidden)
        self.act1 = nn.Tanh()
        self.out = nn.Linear(hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(self.embed(x))
        return self.out(self.act1(self.proj(h[:, -1])))


def build(kind: str, data: Dataset, **kw) -> nn.Module:
    """Build model `kind` ("mlp", "cnn", "gru", "lstm", "rnn") for `data`."""
    if kind == "mlp":
        return MLP(data.x_train.shape[1], data.n_classes, **kw)
    if kind == "cnn":
        return CNN(data.n_classes)
    if kind in ("gru", "lstm", "rnn", "rnn_relu"):
        return GRUNet(int(data.x_train.max()) + 1, data.n_classes, cell=kind, **kw)
    raise ValueError(kind)
