"""The hooks behind ``watch(model)``: gradient, weight and activation signals from PyTorch.

The keys are listed in ``docs/signals.md``. How the work is kept off the training loop:

- Steps: with an optimizer, a step is one ``optimizer.step()`` (counted by a step post-hook);
  without one, one training forward of the model (``model.training`` and grad enabled). The
  counter starts at 0; a step is *logged* when ``step % every == 0``.
- On a step that is not logged, the only Python that runs is the root module's forward
  pre/post hook and the optimizer's step pre/post hook, each an int compare or a None check.
- On a logged step: the root's forward pre-hook records the input batch's statistics and
  starts a :class:`ForwardCapture` (activations, see ``_torch_capture``); the forward hook
  stops it and hooks the output tensor so that the end of its backward pass reads every
  gradient's norm (``torch._foreach_norm``), before any clipping; the optimizer's step
  pre-hook snapshots the parameters it updates, its post-hook computes weight norms and
  update ratios. All of it stays on the tensors' device; the step's figures are stacked into
  one tensor, copied to the host with one ``non_blocking`` copy, and handed to ``run.log``
  once a CUDA event says the copy is done (polled at the next step, never waited for; on
  other accelerators the copy is a plain blocking one).
- Gradient accumulation and steps skipped by ``GradScaler``: until ``optimizer.step()`` runs,
  the forwards of a logged step pool their statistics and the last backward's gradients win.
"""

from __future__ import annotations

import logging
import weakref
from collections import deque
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ._system import SystemMonitor
from ._torch_capture import ForwardCapture, Probe
from ._torch_checks import output_node_act, run_checks
from ._torch_state import (
    ENGINE,
    BackwardTrigger,
    Layers,
    Record,
    StepStats,
    first_tensor,
    out_tensors,
)
from ._torch_stats import tensor_norms

logger = logging.getLogger("client_sdk")

#: logged steps whose host copy may still be in flight before the oldest is waited for
MAX_IN_FLIGHT = 64


class Watch:
    """The hooks ``watch()`` put on one model. ``step`` is the current step; ``findings`` the
    model checks last reported; :meth:`close` (what ``unwatch`` calls) removes everything."""

    def __init__(self, run: Any, root: nn.Module, optimizer: Any, every: int, *,
                 loss: str | None, batch_size: int | None, batch_source: str,
                 scaler: Any, log_eval: bool, activations: bool, functional: bool,
                 update_ratio: bool, ddp: bool, prefix: str,
                 report: Callable[[], None]) -> None:
        self.run = run
        self.every = every
        self.step = 0
        self.findings: list[dict] = []
        self._root = weakref.ref(root)
        self._opt = weakref.ref(optimizer) if optimizer is not None else None
        self._layers = Layers(root, optimizer)
        self._loss, self._batch_size, self._batch_source = loss, batch_size, batch_source
        self._scaler = scaler
        self._log_eval, self._activations, self._functional = log_eval, activations, functional
        self._update_ratio = update_ratio and optimizer is not None
        self._ddp = ddp
        self._ddp_requeued = False
        self._prefix = prefix
        self._report = report
        self.finalizer: weakref.finalize | None = None
        self._cur: StepStats | None = None
        self._eval: StepStats | None = None
        self._capture: ForwardCapture | None = None
        self._depth = 0  # > 0 while a watched forward of the root is running
        self._fwd_train = False
        self._snapshot: tuple | None = None
        self._inflight: deque = deque()
        self._fwd_seen = False
        self._probe: Probe | None = Probe()
        self._failed = False
        self._closed = False
        self.monitor: SystemMonitor | None = None
        self._handles = [
            root.register_forward_pre_hook(self._on_forward_pre, with_kwargs=True),
            root.register_forward_hook(self._on_forward, always_call=True)]
        if optimizer is not None:
            self._handles += [optimizer.register_step_pre_hook(self._on_step_pre),
                              optimizer.register_step_post_hook(self._on_step_post)]
        self.findings = run_checks(root, loss, batch_size, batch_source)

    # -- forward ----------------------------------------------------------------------------
    def _on_forward_pre(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if self._inflight:
            self._drain(False)
        if self._depth:  # the root called inside its own forward
            self._depth += 1
            return
        if self._failed:
            return
        try:
            if module.training and torch.is_grad_enabled():
                if self._opt is None:  # steps are training forwards
                    if self._fwd_seen:
                        if self._cur is not None:
                            self._finalize()
                        self.step += 1
                    self._fwd_seen = True
                if self._eval is not None:
                    self._finish_eval()
                if self.step % self.every == 0:
                    if self._cur is None:
                        self._cur = StepStats(self.step)
                    self._begin(self._cur, args, kwargs, True)
                elif self._probe is not None:
                    self._begin(None, args, kwargs, True)
            elif self._log_eval:
                if self._eval is not None and self._eval.step != self.step:
                    self._finish_eval()
                if self._eval is None:
                    self._eval = StepStats(self.step)
                self._begin(self._eval, args, kwargs, False)
        except Exception as exc:  # noqa: BLE001 - never raise into training
            self._fail(exc)

    def _begin(self, stats: StepStats | None, args: tuple, kwargs: dict, train: bool) -> None:
        """Start watching one forward: input statistics now, activations until it returns."""
        self._depth = 1
        self._fwd_train = train
        if stats is not None:
            x = first_tensor(args, kwargs)
            if x is not None and x.is_floating_point() and x.numel():
                stats.add_input(x)
        probe = self._probe if train else None
        collect = stats is not None and self._activations
        if collect or probe is not None:
            layers = self._layers
            self._capture = ForwardCapture(
                layers.names, layers.acts if collect else {}, layers.act_modules,
                stats.add_act if collect else _ignore, self._functional and collect, probe,
                self._fail)
            self._capture.start()

    def _on_forward(self, module: nn.Module, args: tuple, output: Any) -> None:
        if not self._depth:
            return
        self._depth -= 1
        if self._depth:
            return
        capture, self._capture = self._capture, None
        try:
            if capture is not None:
                capture.stop()
                if (capture.looks_for_functional and capture.functional_calls == 0
                        and not capture.failed):
                    self._functional = False  # none on a logged forward: stop looking
            if not self._fwd_train:
                return
            if self._probe is not None and output is not None:
                self._first_forward_checks(module, output)
            if self._cur is not None and ENGINE is not None:
                trigger = BackwardTrigger(self._on_backward_end)
                for t in out_tensors(output):
                    t.register_hook(trigger)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def _first_forward_checks(self, module: nn.Module, output: Any) -> None:
        probe, self._probe = self._probe, None
        found = run_checks(module, self._loss, self._batch_size, self._batch_source,
                           order=probe.order or None, node_act=output_node_act(output),
                           observed_batch=probe.bn_batch)
        if found != self.findings:
            self.findings = found
            self._report()

    # -- backward ---------------------------------------------------------------------------
    def _on_backward_end(self) -> None:
        if self._ddp:  # run after DDP's own end-of-backward callback has averaged the grads
            self._ddp_requeued = not self._ddp_requeued
            if self._ddp_requeued:
                ENGINE.queue_callback(self._on_backward_end)
                return
        try:
            if self._cur is not None and not self._closed:
                self._cur.grads = self._grad_stats()
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def _grad_stats(self) -> tuple | None:
        params = self._layers.live()
        idx = [i for i, p in enumerate(params) if p is not None and p.grad is not None]
        if not idx:
            return None
        grads = [params[i].grad for i in idx]
        norms = tensor_norms([g.coalesce().values() if g.is_sparse else g for g in grads])
        return idx, norms, self._loss_scale()

    def _loss_scale(self) -> Any:
        """The GradScaler's current scale: a copy on its device (read without a sync; the
        scaler updates its own in place), a float, or None without an enabled scaler."""
        s = self._scaler
        if s is None or not s.is_enabled():
            return None
        scale = s._get_scale_async() if hasattr(s, "_get_scale_async") else None
        return float(s.get_scale()) if scale is None else scale.detach().reshape(()).clone()

    # -- optimizer step ---------------------------------------------------------------------
    def _on_step_pre(self, optimizer: Any, args: tuple, kwargs: dict) -> None:
        if self._cur is None or not self._update_ratio or self._failed:
            return
        try:
            params = self._layers.live()
            idx = [i for i in self._layers.updated if params[i] is not None]
            self._snapshot = (idx, [params[i].detach().clone() for i in idx])
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)

    def _on_step_post(self, optimizer: Any, args: tuple, kwargs: dict) -> None:
        if self._cur is not None and not self._failed:
            try:
                self._finalize(optimizer)
            except Exception as exc:  # noqa: BLE001
                self._fail(exc)
        self._cur = None
        self._snapshot = None
        self.step += 1

    # -- turning a step's tensors into one host copy ----------------------------------------
    def _finalize(self, optimizer: Any = None) -> None:
        cur, self._cur = self._cur, None
        snap, self._snapshot = self._snapshot, None
        rec = Record(cur.step, self._prefix)
        params = self._layers.live()
        live = [i for i, p in enumerate(params) if p is not None]
        tensors = [params[i].detach() for i in live]
        ratio_idx: list[int] = []
        if snap is not None and all(params[i] is not None for i in snap[0]):
            ratio_idx, old = snap
            _sub_(old, [params[i].detach() for i in ratio_idx])  # old := before - after
            tensors += old
        norms = tensor_norms(tensors)  # one call: weights, then update sizes
        if live:
            rec.add("weights", norms[:len(live)], live)
        if ratio_idx:
            rec.add("ratio", norms[len(live):], ratio_idx)
        if cur.grads is not None:
            idx, grad_norms, scale = cur.grads
            if isinstance(scale, Tensor):
                rec.add("grads", [*grad_norms, scale], idx, None)
            else:
                rec.add("grads", list(grad_norms), idx, scale)
        rec.add_stats(cur)
        if optimizer is not None:
            self._add_lr(rec, optimizer)
        self._emit(rec)

    @staticmethod
    def _add_lr(rec: Record, optimizer: Any) -> None:
        lrs = [g.get("lr") for g in optimizer.param_groups]
        keys = ["lr"] + ([f"lr/{i}" for i in range(len(lrs))] if len(lrs) > 1 else [])
        values = lrs[:1] + (lrs if len(lrs) > 1 else [])
        tensor_keys, tensors = [], []
        for key, lr in zip(keys, values):
            if isinstance(lr, Tensor):
                tensor_keys.append(key)
                tensors.append(lr.detach().reshape(()))
            elif isinstance(lr, (int, float)):
                rec.extras[key] = float(lr)
        if tensors:
            rec.add("lr", tensors, tensor_keys)

    def _finish_eval(self) -> None:
        stats, self._eval = self._eval, None
        rec = Record(stats.step, self._prefix)
        rec.add_stats(stats, "eval/")
        self._emit(rec)

    def _emit(self, rec: Record) -> None:
        """Stack the record's tensors and start their one copy to the host."""
        host, event = None, None
        if rec.tensors:
            try:
                flat = torch.stack(rec.tensors)
            except RuntimeError:  # a model spread over devices: gather on the first one
                home = rec.tensors[0].device
                flat = torch.stack([t.to(home, non_blocking=True) for t in rec.tensors])
            home = flat.device
            if home.type == "cuda":
                host = flat.to("cpu", non_blocking=True)
                event = torch.cuda.Event()
                event.record()
            else:
                host = flat.to("cpu")
        rec.tensors = []
        self._inflight.append((rec, host, event))
        self._drain(len(self._inflight) > MAX_IN_FLIGHT)

    def _drain(self, block: bool) -> None:
        """Log every record whose copy is done, oldest first (``block``: wait for the
        oldest)."""
        while self._inflight:
            rec, host, event = self._inflight[0]
            if event is not None and not event.query():
                if not block:
                    return
                event.synchronize()
            self._inflight.popleft()
            block = False
            try:
                values = rec.decode(host.tolist() if host is not None else [], self._layers)
                self.run.log(values, step=rec.step)
            except Exception as exc:  # noqa: BLE001
                self._fail(exc)

    # -- lifecycle --------------------------------------------------------------------------
    def _fail(self, exc: BaseException) -> None:
        if not self._failed:
            self._failed = True
            logger.warning("losslens: watch() stopped collecting after an internal error: %r",
                           exc, exc_info=exc)

    def close(self, flush: bool = True) -> None:
        """Remove every hook, stop the system thread, and (``flush``) log what is pending."""
        if self._closed:
            return
        self._closed = True
        if self._capture is not None:
            self._capture.stop()
            self._capture = None
        self._depth = 0
        for h in self._handles:
            h.remove()
        self._handles.clear()
        if self.monitor is not None:
            self.monitor.stop()
        if self.finalizer is not None:
            self.finalizer.detach()
        try:
            if flush and self._cur is not None and not self._failed:
                opt = self._opt() if self._opt is not None else None
                self._finalize(opt)
            if flush and self._eval is not None and not self._failed:
                self._finish_eval()
            self._drain(True)
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
        self._cur = self._eval = self._snapshot = None


def _ignore(*_args: Any) -> None:
    return None


def _sub_(a: list[Tensor], b: list[Tensor]) -> None:
    """``a[i] -= b[i]`` for all i, in one call where ``torch._foreach_sub_`` allows."""
    try:
        torch._foreach_sub_(a, b)
    except (AttributeError, RuntimeError, TypeError):
        for x, y in zip(a, b):
            x.sub_(y)
