"""Adam without ``torch.optim``: the same update, bit for bit, as ``torch.optim.Adam`` (its
fused kernel with ``fused=True``, its single-tensor loop otherwise; no weight decay, no
AMSGrad), and the same ``state_dict`` layout, so a checkpoint written with either loads
into either.

Why: the first call of any ``torch.optim`` optimizer imports ``torch._dynamo`` (every
optimizer method is wrapped in ``torch._disable_dynamo``, which imports it lazily), about
2 s of a 15 s command; qbm compiles nothing, so its trainers (the BM-VAE, the generation
judge, the QCBM, the style-based QGAN and its autoencoder) step with this class instead."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

# the keys torch.optim.Adam writes into each param group of its state dict
_GROUP_FLAGS = {
    "weight_decay": 0,
    "amsgrad": False,
    "maximize": False,
    "foreach": None,
    "capturable": False,
    "differentiable": False,
}


class Adam:
    """``torch.optim.Adam(params, lr, betas, eps, fused=fused)`` for one param group.

    ``step()`` updates every parameter that has a gradient; ``zero_grad()`` sets the
    gradients to None (torch's default). ``fused=True`` needs floating-point parameters on
    one device kind that torch's fused Adam supports (CPU, CUDA)."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        *,
        fused: bool = False,
    ) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError("params: got no parameters to optimize")
        if not lr > 0:
            raise ValueError(f"lr: must be > 0, got {lr}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"betas: each must be in [0, 1), got {betas}")
        if not eps >= 0:
            raise ValueError(f"eps: must be >= 0, got {eps}")
        if fused and any(not p.is_floating_point() for p in self.params):
            raise ValueError("params: fused Adam needs floating-point parameters")
        self.lr, self.betas, self.eps, self.fused = float(lr), (float(betas[0]), float(betas[1])), float(eps), fused
        # per parameter index: {"step": 0-dim float32 tensor, "exp_avg", "exp_avg_sq"}
        self.state: dict[int, dict[str, torch.Tensor]] = {}

    def _state(self, i: int, p: torch.Tensor) -> dict[str, torch.Tensor]:
        st = self.state.get(i)
        if st is None:
            # as torch keeps it: float32 on the parameter's device for the fused kernel; otherwise
            # on the CPU, float64 only when that is the default dtype
            if self.fused:
                step = torch.zeros((), dtype=torch.float32, device=p.device)
            else:
                wide = torch.get_default_dtype() == torch.float64
                step = torch.tensor(0.0, dtype=torch.float64 if wide else torch.float32)
            st = self.state[i] = {
                "step": step,
                "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
            }
        return st

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        live = [(i, p) for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        for _, p in live:
            if p.grad.is_sparse:  # type: ignore[union-attr]
                raise RuntimeError("Adam does not support sparse gradients")
        states = [self._state(i, p) for i, p in live]
        beta1, beta2 = self.betas
        if self.fused:
            # torch groups the tensors by (device, dtype) and keeps their order within a group
            groups: dict[tuple[torch.device, torch.dtype], list[int]] = {}
            for k, (_, p) in enumerate(live):
                groups.setdefault((p.device, p.dtype), []).append(k)
            for ks in groups.values():
                steps = [states[k]["step"] for k in ks]
                torch._foreach_add_(steps, 1)
                torch._fused_adam_(
                    [live[k][1] for k in ks],
                    [live[k][1].grad for k in ks],  # type: ignore[misc]
                    [states[k]["exp_avg"] for k in ks],
                    [states[k]["exp_avg_sq"] for k in ks],
                    [],
                    steps,
                    amsgrad=False,
                    lr=self.lr,
                    beta1=beta1,
                    beta2=beta2,
                    weight_decay=0.0,
                    eps=self.eps,
                    maximize=False,
                    grad_scale=None,
                    found_inf=None,
                )
            return
        for (_, p), st in zip(live, states, strict=True):
            grad = p.grad
            assert grad is not None
            st["step"] += 1
            st["exp_avg"].lerp_(grad, 1 - beta1)
            st["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step = st["step"].item()
            step_size = self.lr / (1 - beta1**step)
            denom = (st["exp_avg_sq"].sqrt() / (1 - beta2**step) ** 0.5).add_(self.eps)
            p.addcdiv_(st["exp_avg"], denom, value=-step_size)

    def state_dict(self) -> dict[str, Any]:
        """torch.optim.Adam's layout: {"state": {index: {...}}, "param_groups": [{...}]}."""
        group = {"lr": self.lr, "betas": self.betas, "eps": self.eps, **_GROUP_FLAGS, "fused": self.fused or None,
                 "decoupled_weight_decay": False, "params": list(range(len(self.params)))}  # fmt: skip
        return {"state": {i: dict(st) for i, st in self.state.items()}, "param_groups": [group]}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        """Loads a state dict written by this class or by ``torch.optim.Adam`` over the same
        parameters (one group; its lr, betas and eps are taken over)."""
        try:
            groups, state = sd["param_groups"], sd["state"]
        except (KeyError, TypeError):
            raise ValueError("opt_state: not an Adam state dict (no 'state' / 'param_groups')") from None
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            sizes = [len(g["params"]) for g in groups]
            raise ValueError(f"opt_state: expected one group of {len(self.params)} parameters, got groups of {sizes}")
        g = groups[0]
        for key in ("amsgrad", "maximize"):
            if g.get(key):
                raise ValueError(f"opt_state: {key}=True is not supported")
        if g.get("weight_decay", 0):
            raise ValueError(f"opt_state: weight_decay={g['weight_decay']} is not supported")
        self.lr, self.betas, self.eps = float(g["lr"]), (float(g["betas"][0]), float(g["betas"][1])), float(g["eps"])
        self.state = {}
        for slot, idx in enumerate(g["params"]):
            st = state.get(idx)
            if st is None:
                continue
            p = self.params[slot]
            ref = self._state(slot, p)  # fresh state: the step's dtype and device for this mode
            ref["step"].copy_(torch.as_tensor(st["step"]))
            for key in ("exp_avg", "exp_avg_sq"):
                if tuple(st[key].shape) != tuple(p.shape):
                    raise ValueError(f"opt_state: {key} of parameter {slot} has shape {tuple(st[key].shape)}, "
                                     f"the parameter {tuple(p.shape)}")  # fmt: skip
                ref[key].copy_(st[key])
