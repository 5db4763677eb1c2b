"""watch(model)'s static model checks: each fires on a model built to trigger it and stays
silent on a clean ResNet-like network."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from client_sdk import _torch_watch

from .watch_support import FakeRun

torch.set_num_threads(1)


def watch(run, model, **kw):
    return _torch_watch.watch(run, model, torch.optim.SGD(model.parameters(), lr=0.01),
                              system=False, **kw)


def train_step(model, x):
    model.train()
    model(x).float().sum().backward()


class BasicBlock(nn.Module):
    """conv-bn-relu-conv-bn plus a projection shortcut (bias-free convs before batch norm)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNetLike(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU())
        self.block1 = BasicBlock(8, 8)
        self.block2 = BasicBlock(8, 16)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.block2(self.block1(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def test_clean_resnet_like_network_has_no_findings(run):
    model = ResNetLike()
    watch(run, model, loss_fn=nn.CrossEntropyLoss(), batch_size=32)
    assert run.checks == []
    train_step(model, torch.randn(32, 3, 8, 8))
    assert run.checks == []


def test_softmax_before_cross_entropy(run):
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(dim=1))
    watch(run, model, loss_fn=nn.CrossEntropyLoss())
    assert run.kinds() == [("output_activation", "3", "warning")]
    assert run.checks[0]["evidence"]["activation"] == "softmax"
    assert "CrossEntropyLoss" in run.checks[0]["title"]


def test_sigmoid_before_bce_with_logits_named_by_string(run):
    model = nn.Sequential(nn.Linear(4, 1), nn.Sigmoid())
    watch(run, model, loss_fn="BCEWithLogitsLoss")
    assert run.kinds() == [("output_activation", "1", "warning")]


def test_functional_output_activation_found_on_the_first_forward():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return F.softmax(self.fc(x), dim=1)

    run = FakeRun(config={"loss": "cross_entropy"})  # the loss from the run config
    model = Net()
    try:
        watch(run, model)
        assert run.checks == []  # nothing in the module structure says so
        train_step(model, torch.randn(2, 4))
        assert run.kinds() == [("output_activation", "output", "warning")]
    finally:
        _torch_watch.unwatch(run)


@pytest.mark.parametrize("last, loss", [
    (nn.LogSoftmax(dim=1), nn.NLLLoss()),  # what NLLLoss expects
    (nn.Softmax(dim=1), None),  # no loss known: never guess
    (nn.Sigmoid(), nn.BCELoss()),  # BCELoss wants probabilities
])
def test_output_activation_silent_when_it_fits(run, last, loss):
    model = nn.Sequential(nn.Linear(4, 3), last)
    watch(run, model, loss_fn=loss)
    train_step(model, torch.randn(2, 4))
    assert run.checks == []


def test_missing_bias_without_normalisation_after(run):
    model = nn.Sequential(nn.Linear(4, 8, bias=False), nn.ReLU(),
                          nn.Linear(8, 8, bias=False), nn.Dropout(0.1), nn.LayerNorm(8),
                          nn.Linear(8, 2))
    watch(run, model)
    assert run.kinds() == [("missing_bias", "0", "info")]
    assert run.checks[0]["evidence"]["next"] == "ReLU"


def test_many_bias_free_layers_give_one_model_finding(run):
    layers = []
    for _ in range(10):
        layers += [nn.Linear(4, 4, bias=False), nn.GELU()]
    watch(run, nn.Sequential(*layers))
    assert run.kinds() == [("missing_bias", "model", "info")]
    assert run.checks[0]["evidence"]["count"] == 10


def test_zero_init_is_symmetric(run):
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(),
                          nn.Linear(8, 2))
    for m in (model[0], model[2]):
        nn.init.zeros_(m.weight)
    nn.init.constant_(model[4].weight, 0.3)
    watch(run, model)
    assert run.kinds() == [("symmetric_init", "0", "critical"),
                           ("symmetric_init", "2", "critical"),
                           ("symmetric_init", "4", "critical")]
    assert run.checks[2]["evidence"] == {"value": pytest.approx(0.3), "shape": [2, 8]}


def test_only_a_zero_output_layer_is_info(run):
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    nn.init.zeros_(model[2].weight)
    watch(run, model)
    assert run.kinds() == [("symmetric_init", "2", "info")]


def cnn_bn():
    return nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


@pytest.mark.parametrize("batch, severity", [(2, "critical"), (4, "warning"), (8, "warning")])
def test_small_batch_norm_from_kwarg(run, batch, severity):
    watch(run, cnn_bn(), batch_size=batch)
    assert run.kinds() == [("small_batch_norm", "model", severity)]
    assert run.checks[0]["evidence"]["batch_size"] == batch


def test_batch_norm_with_a_reasonable_batch_is_silent(run):
    watch(run, cnn_bn(), batch_size=16)
    assert run.checks == []


def test_small_batch_norm_from_config_then_from_the_first_forward():
    run = FakeRun(config={"batch_size": 3})
    try:
        watch(run, cnn_bn())
        assert run.checks[0]["evidence"]["source"] == "config"
    finally:
        _torch_watch.unwatch(run)
    run = FakeRun()
    model = cnn_bn()
    try:
        watch(run, model)
        assert run.checks == []
        train_step(model, torch.randn(4, 1, 8, 8))
        assert run.kinds() == [("small_batch_norm", "model", "warning")]
        assert run.checks[0]["evidence"]["source"] == "observed"
    finally:
        _torch_watch.unwatch(run)


def test_findings_of_two_models_on_one_run_are_reported_together(run):
    a = nn.Sequential(nn.Linear(4, 4, bias=False), nn.ReLU(), nn.Linear(4, 2))
    b = nn.Sequential(nn.Linear(4, 2), nn.Softmax(dim=1))
    watch(run, a)
    watch(run, b, loss_fn=nn.CrossEntropyLoss())
    assert {f["kind"] for f in run.checks} == {"missing_bias", "output_activation"}
