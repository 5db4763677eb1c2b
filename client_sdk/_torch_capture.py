"""What runs during one logged forward pass: activation capture and the first-forward probe.

Nothing here is installed on steps that are not logged. For a logged forward the watcher
starts a :class:`ForwardCapture`, which, until the root module's forward returns:

- hands every watched activation module's output to the sink: through forward hooks on
  those modules (``by_module``: the watcher registers :meth:`ForwardCapture.act_hook` on them
  and keeps them, and the capture, while logged steps follow each other), or, when
  functional calls are looked for or the first forward is probed, through global module
  forward hooks (``torch.nn.modules.module``) that also keep a stack of the modules run;
- enters a ``TorchFunctionMode`` that sees functional activations (``F.relu``, ``torch.tanh``,
  ``x.sigmoid()``, ... see ``FUNCTIONAL_SPECS``) called inside the watched model, outside of
  an activation module (so ``nn.ReLU`` is not counted twice). Such a call is named
  ``<enclosing module>.F.<function>.<k>``: the k-th call (from 0) of that function directly
  inside that module's forward, e.g. ``block1.F.relu.0``; in the root's own forward,
  ``F.relu.0``.

The hooks only act on the thread that started the capture.
"""

from __future__ import annotations

import threading
from typing import Callable

from torch import Tensor, nn
from torch.nn.modules import module as module_hooks
from torch.overrides import TorchFunctionMode

from ._torch_stats import FUNCTIONAL_SPECS, Spec

#: sink(name, spec, output tensor)
Sink = Callable[[str, Spec, Tensor], None]

_NORM_TYPES = (nn.modules.batchnorm._BatchNorm,)


class Probe:
    """What the first training forward shows: leaf modules in call order, batch norm batches."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.bn_batch: dict[str, int] = {}


class _ActivationMode(TorchFunctionMode):
    def __init__(self, capture: ForwardCapture) -> None:
        super().__init__()
        self._capture = capture

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        capture = self._capture
        if capture.busy:
            return out
        name = getattr(func, "__name__", None)
        spec = FUNCTIONAL_SPECS.get(name) if isinstance(name, str) else None
        if spec is not None and isinstance(out, Tensor):
            try:
                capture.functional(name, spec, out)
            except Exception as exc:  # noqa: BLE001 - never raise into training
                capture.failed = True
                capture._on_error(exc)
        return out


class ForwardCapture:
    """Hooks alive for one logged forward of the watched model (see the module docstring)."""

    __slots__ = ("_names", "_acts", "_sink", "_probe", "_on_error", "_tid", "_stack",
                 "_counts", "_handles", "_mode", "busy", "looks_for_functional",
                 "functional_calls", "failed", "by_module", "active")

    def __init__(self, names: dict[int, str], acts: dict[int, tuple[str, Spec]],
                 sink: Sink, functional: bool, probe: Probe | None,
                 on_error: Callable) -> None:
        self._names = names
        self._acts = acts
        self._sink = sink
        self._probe = probe
        self._on_error = on_error
        self._tid = threading.get_ident()
        self._stack: list[int] = []
        self._counts: dict[tuple[str, str], int] = {}
        self._handles: list = []
        self._mode: _ActivationMode | None = None
        self.busy = False
        #: whether functional calls are looked for; how many were caught; whether a sink
        #: call failed
        self.looks_for_functional = functional
        self.functional_calls = 0
        self.failed = False
        #: activation modules only: the caller puts :meth:`act_hook` on them (cheaper than
        #: global hooks, which every module's call would go through) and may reuse this
        #: capture for later forwards (:meth:`restart`)
        self.by_module = not (functional or probe is not None)
        self.active = True  # between start (or restart) and stop

    def restart(self, sink: Sink) -> None:
        """Capture another forward into ``sink`` (``by_module`` captures only)."""
        self._sink = sink
        self._tid = threading.get_ident()
        self.failed = False
        self.active = True

    def start(self) -> None:
        if self.by_module:
            return
        self._handles.append(module_hooks.register_module_forward_pre_hook(self._pre))
        self._handles.append(module_hooks.register_module_forward_hook(self._post))
        if self.looks_for_functional:
            self._mode = _ActivationMode(self)
            self._mode.__enter__()

    def stop(self) -> None:
        self.active = False
        if self._handles:
            for h in self._handles:
                h.remove()
            self._handles.clear()
        if self._mode is not None:
            mode, self._mode = self._mode, None
            mode.__exit__(None, None, None)

    # -- global module hooks -------------------------------------------------------------
    def _pre(self, module: nn.Module, args) -> None:
        if threading.get_ident() != self._tid:
            return
        key = id(module)
        self._stack.append(key)
        probe = self._probe
        if probe is not None and key in self._names:
            try:
                name = self._names[key]
                if not any(True for _ in module.children()):
                    probe.order.append(name)
                if isinstance(module, _NORM_TYPES) and args and isinstance(args[0], Tensor):
                    probe.bn_batch[name] = int(args[0].shape[0])
            except Exception as exc:  # noqa: BLE001 - never raise into training
                self._on_error(exc)

    def _post(self, module: nn.Module, args, output) -> None:
        if threading.get_ident() != self._tid:
            return
        key = id(module)
        if not self._stack or self._stack[-1] != key:
            return  # the root itself (its pre-hook ran before the capture started)
        self._stack.pop()
        act = self._acts.get(key)
        if act is not None and isinstance(output, Tensor):
            self._emit(act[0], act[1], output)

    def act_hook(self, module: nn.Module, args, output) -> None:
        """The forward hook on each activation module, in ``by_module`` mode (no function
        mode runs then, so ``busy`` need not be set)."""
        if self.active and isinstance(output, Tensor) and threading.get_ident() == self._tid:
            act = self._acts.get(id(module))
            if act is not None and output.is_floating_point() and output.numel():
                try:
                    self._sink(act[0], act[1], output)
                except Exception as exc:  # noqa: BLE001 - never raise into training
                    self.failed = True
                    self._on_error(exc)

    # -- functional activations ------------------------------------------------------------
    def functional(self, fname: str, spec: Spec, out: Tensor) -> None:
        if threading.get_ident() != self._tid:
            return
        enclosing = self._names.get(self._stack[-1]) if self._stack else ""
        if enclosing is None or (self._stack and self._stack[-1] in self._acts):
            return  # inside a module we do not watch, or inside a watched activation module
        base = fname.rstrip("_")
        k = self._counts.get((enclosing, base), 0)
        self._counts[(enclosing, base)] = k + 1
        name = f"{enclosing}.F.{base}.{k}" if enclosing else f"F.{base}.{k}"
        self.functional_calls += 1
        self._emit(name, spec, out)

    def _emit(self, name: str, spec: Spec, out: Tensor) -> None:
        if out.numel() == 0 or not out.is_floating_point():
            return
        self.busy = True
        try:
            self._sink(name, spec, out)
        except Exception as exc:  # noqa: BLE001 - never raise into training
            self.failed = True
            self._on_error(exc)
        finally:
            self.busy = False
