"""Training, evaluation and generation for BM-VAEs and Gaussian VAEs."""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from qbm._adam import Adam
from qbm.data.images import ImageData
from qbm.registry import NegativePhase
from qbm.models.vae import BMVAE, GaussianVAE
from qbm.models.evaluation import NOTE
from qbm.checkpoint import load_checkpoint, save_atomic


def check_device(device: Any) -> torch.device:
    """The torch device ``device``, or a ValueError naming ``--device`` when this machine
    cannot use it (an unknown name, CUDA without a CUDA build or GPU)."""
    try:
        dev = torch.device(device)
        torch.zeros(1, device=dev)
    except (RuntimeError, TypeError, AssertionError) as e:
        raise ValueError(f"--device: cannot use {device!r} on this machine ({e})") from None
    return dev


# how pixels meet the Bernoulli likelihood: grey levels as they are, or dynamically binarised
BINARIZE = ("none", "dynamic")
# test images the per-epoch monitor evaluates at most (a fixed subset; the final
# evaluation uses the whole test set)
MONITOR_IMAGES = 1000
# the KL weight's warm-up starts here, not at 0: with a weight near 0 the encoder's Bernoulli
# logits saturate within a few hundred Adam steps on 28x28 images (nothing holds q's entropy up),
# the straight-through gradient through saturated units is 0, and the BM-VAE ends with no
# active unit (measured on MNIST: 0 of 32 units active after an epoch from 0; 32 from 0.2)
KL_START = 0.2
# epochs of at least this many batches show a progress bar of their own inside the run's
INNER_BAR_BATCHES = 200


class VAETrainer:
    """Trains a :class:`BMVAE` (negative phase from a named qbm sampler) or a
    :class:`GaussianVAE` with Adam; every random draw comes from one torch generator and
    the sampler's seeded streams, both saved in checkpoints, so a resumed run continues
    exactly as an uninterrupted one."""

    def __init__(
        self,
        model: BMVAE | GaussianVAE,
        data: ImageData,
        *,
        sampler: str = "gibbs",
        num_chains: int = 128,
        sweeps: int = 10,
        lr: float = 2e-3,
        batch_size: int = 32,
        seed: int = 0,
        num_threads: int | None = None,
        qpu: Any = None,
        kl_warmup: int = 10,
        kl_start: float = KL_START,
        iw_samples: int = 50,
        device: str | torch.device = "cpu",
        holdout: Any = (),
        certify_every: int = 5,
        binarize: str = "none",
        negative_options: dict[str, Any] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
        if not lr > 0:
            raise ValueError(f"lr: must be > 0, got {lr}")
        try:
            self.device = torch.device(device)
            model.to(self.device)
        except (RuntimeError, TypeError) as e:
            raise ValueError(f"device: cannot use {device!r} ({e})") from None
        self.model, self.data = model, data
        self.is_bm = isinstance(model, BMVAE)
        self.batch_size, self.lr, self.seed, self.kl_warmup = batch_size, lr, seed, kl_warmup
        self.iw_samples = iw_samples
        if not 0.0 <= kl_start <= 1.0:
            raise ValueError(f"kl_start: the KL weight at the start of the warm-up must be in [0, 1], got {kl_start}")
        self.kl_start = float(kl_start)
        if isinstance(certify_every, bool) or not isinstance(certify_every, int) or certify_every < 0:
            raise ValueError(f"certify_every: expected an integer >= 0 (0: never), got {certify_every!r}")
        self.certify_every = certify_every
        # classes already removed from ``data`` (ImageData.without_classes): recorded in the
        # checkpoint so that a resumed run trains on the same images
        self.holdout = sorted(int(c) for c in holdout)
        # the fused kernel (one pass per parameter group, elementwise, so the same bits on any
        # thread count): Adam over a 2176-latent conv VAE 15.9 -> 2.2 ms per step on one
        # thread, the 32-latent one 3.8 -> 1.2 ms; CUDA parameters get their own fused kernel.
        # qbm's Adam (torch.optim.Adam's bits and state dict) spares the torch._dynamo import
        self.opt = Adam(model.parameters(), lr=lr, fused=True)
        self.gen = torch.Generator().manual_seed(seed)
        self.sampler_name = sampler if self.is_bm else "none"
        self.negative = (
            NegativePhase(
                sampler,
                num_chains,
                sweeps=sweeps,
                seed=seed,
                num_threads=num_threads,
                qpu=qpu,
                **(negative_options or {}),
            )  # fmt: skip
            if self.is_bm
            else None
        )
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.wall = 0.0
        if binarize not in BINARIZE:
            raise ValueError(f"binarize: unknown value {binarize!r}; choose one of {', '.join(BINARIZE)}")
        self.binarize = binarize
        self.x_train = torch.as_tensor(data.rows("train")).to(self.device)
        self.x_test = torch.as_tensor(data.rows("test")).to(self.device)
        if binarize == "dynamic":
            # the VAE literature's dynamically binarised MNIST: a fresh Bernoulli draw of every
            # training batch (from the trainer's generator, so a resumed run draws the same), and
            # one fixed binarisation of the test set per seed
            g = torch.Generator().manual_seed(int(seed) * 7919 + 17)
            self.x_test = torch.bernoulli(self.x_test.cpu(), generator=g).to(self.device)
        # the per-epoch monitor: a fixed subset of at most MONITOR_IMAGES test images (all of
        # a small test set, in order: digits' 359 are unchanged), so evaluating an epoch of
        # 60k MNIST images costs a fraction of training it; the final numbers use all of them
        self.x_monitor = self.test_subset(MONITOR_IMAGES)
        self.log_z_info: dict[str, Any] | None = None

    # ------------------------------------------------------------ training
    def _log_z(self) -> dict[str, Any] | None:
        """The prior's log Z (exact, RBM half-enumeration or AIS); computed when the
        evaluation asks for it, never inside the timed training steps."""
        if not self.is_bm:
            return None
        from qbm.models.evaluation import log_partition

        assert isinstance(self.model, BMVAE)
        return log_partition(self.model.prior, ais_chains=256, ais_betas=1000, seed=self.seed + self.epoch)

    def kl_weight(self, epochs_done: float) -> float:
        """The KL term's weight after ``epochs_done`` (fractional) epochs: linear from
        ``kl_start`` to 1 over ``kl_warmup`` epochs, then 1."""
        ramp = min(1.0, epochs_done / self.kl_warmup) if self.kl_warmup > 0 else 1.0
        return self.kl_start + (1.0 - self.kl_start) * ramp

    def train_epoch(self, progress: bool = True, report: Any = None) -> dict[str, Any]:
        """One epoch and the monitor's evaluation. ``report``: a callable given a short line
        ("epoch 3: batch 800/1875") about every 2 s, for callers without a terminal bar."""
        t0 = time.perf_counter()
        last_report = t0
        self.model.train()
        perm = torch.randperm(len(self.x_train), generator=self.gen).to(self.device)
        sums = {"recon": 0.0, "kl": 0.0}
        count = 0
        batches = range(0, len(perm), self.batch_size)
        bar = tqdm(batches, desc=f"epoch {self.epoch + 1}", leave=False, disable=not progress)
        nb = max(1, len(batches))
        z_last = None
        for b, start in enumerate(bar):
            xb = self.x_train[perm[start : start + self.batch_size]]
            if self.binarize == "dynamic":
                xb = torch.bernoulli(xb.cpu(), generator=self.gen).to(self.device)
            out, z_last = self.step(xb, self.kl_weight(self.epoch + (b + 1) / nb))
            k = len(xb)
            sums["recon"] += float(out["recon"].detach()) * k
            sums["kl"] += float(out["kl"].detach()) * k  # without log Z (added below)
            count += k
            bar.set_postfix(recon=f"{float(out['recon'].detach()):.2f}")
            if report is not None and time.perf_counter() - last_report >= 2.0:
                last_report = time.perf_counter()
                report(f"epoch {self.epoch + 1}: batch {b + 1}/{nb}, recon {float(out['recon'].detach()):.1f}")
        self.epoch += 1
        dt = time.perf_counter() - t0
        self.wall += dt
        t1 = time.perf_counter()
        if report is not None:
            report(f"epoch {self.epoch}: evaluating {len(self.x_monitor)} test images")
        test = self.evaluate(self.x_monitor)
        eval_dt = time.perf_counter() - t1
        lz = self.log_z
        rec = {
            "epoch": self.epoch,
            "train_recon": sums["recon"] / count,
            "train_kl": sums["kl"] / count + lz,
            "train_elbo": -(sums["recon"] + sums["kl"]) / count - lz,
            "test_iw_loglik": test["iw_loglik"],
            "iw_samples": test["iw_samples"],
            "test_elbo": test["elbo"],
            "test_recon": test["recon_sampled"],
            "test_recon_sampled": test["recon_sampled"],
            "test_recon_at_mode": test["recon_at_mode"],
            "test_kl": test["kl"],
            "active_units": test["active_units"],
            "eval_images": int(len(self.x_monitor)),
            "log_z": lz,
            "log_z_method": test.get("log_z_method"),
            "epoch_seconds": dt,
            # the monitor's evaluation (log Z and the test numbers on eval_images), outside epoch_seconds
            "eval_seconds": eval_dt,
            "wall_seconds": self.wall,
        }
        if self.negative is not None and "beta_eff" in self.negative.last_info:
            rec["beta_eff"] = self.negative.last_info["beta_eff"]
        if z_last is not None and self.certify_every and self.epoch % self.certify_every == 0:
            rec["negative_certificate"] = self.certify_negative(z_last)
        self.history.append(rec)
        return rec

    def certify_negative(self, z: torch.Tensor) -> dict[str, Any]:
        """Certificate (:func:`qbm.diagnostics.certify`) of the last negative-phase samples
        against the prior they were drawn for, at beta = 1 (the gradient assumes samples of
        p(z)); outside the timed training step."""
        from qbm.diagnostics import certify

        t0 = time.perf_counter()
        spins = np.where(z.detach().cpu().numpy() > 0, 1, -1).astype(np.int8)
        c = certify(spins, self.model.prior.to_ising(), beta=1.0, bootstrap=100, seed=self.epoch)
        keep = ("beta_eff", "beta_eff_ci", "tv", "tv_floor", "ok", "verdict", "num_samples")
        return {**{k: c[k] for k in keep}, "seconds": time.perf_counter() - t0}

    @property
    def log_z(self) -> float:
        return 0.0 if self.log_z_info is None else float(self.log_z_info["log_z"])

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor | None = None, num_samples: int | None = None) -> dict[str, Any]:
        """Test numbers (see :func:`qbm.models.evaluation.evaluate_vae`): IW log-likelihood
        with ``num_samples`` (default ``iw_samples``) posterior samples, ELBO, sampled
        reconstruction, KL (rate), reconstruction at the mode, active units. The prior's
        log Z is recomputed here (outside the timed training steps)."""
        from qbm.models.evaluation import evaluate_vae

        self.log_z_info = self._log_z()
        x = self.x_test if x is None else x
        res = evaluate_vae(self.model, x, num_samples=num_samples or self.iw_samples, log_z=self.log_z_info, seed=12345)
        res["recon"] = res["recon_sampled"]
        return res

    def test_subset(self, n: int) -> torch.Tensor:
        """The first ``n`` test images of one fixed random order (in their order in the
        test set): the monitor's and the final evaluation's subsets; all if ``n`` covers them."""
        if n >= len(self.x_test):
            return self.x_test
        keep = np.sort(np.random.default_rng(0).permutation(len(self.x_test))[:n])
        return self.x_test[torch.as_tensor(keep)]

    def step(self, xb: torch.Tensor, kl_weight: float) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """One Adam step on the batch ``xb`` (negative phase, losses, backward); returns the
        losses and the negative-phase samples."""
        z_model = self.negative.sample(self.model.prior).to(self.device) if self.negative is not None else None
        out = self.model.forward_losses(xb, z_model, self.gen, 0.0, kl_weight=kl_weight)
        self.opt.zero_grad()
        out["objective"].backward()
        self.opt.step()
        return out, z_model

    def final_evaluation(self, num_samples: int, images: int | None = None) -> dict[str, Any]:
        """:meth:`evaluate` on the whole test set (or its first ``images`` images in the
        monitor's fixed random order), in chunks of bounded memory, with its wall time and
        the process's peak resident memory so far (``peak_rss_mb``)."""
        if images is not None and images < 1:
            raise ValueError(f"images: must be >= 1, got {images}")
        x = self.x_test if images is None else self.test_subset(images)
        t0 = time.perf_counter()
        res = self.evaluate(x, num_samples=num_samples)
        res.update(images=int(len(x)), of_images=int(len(self.x_test)), seconds=time.perf_counter() - t0,
                   peak_rss_mb=peak_rss_mb())  # fmt: skip
        return res

    def train(
        self, epochs: int, *, progress: bool = True, checkpoint: str | None = None, metrics_path: str | None = None
    ) -> list[dict[str, Any]]:
        """Train until ``epochs`` epochs in total (a resumed trainer continues)."""
        bar = tqdm(
            range(self.epoch, epochs),
            desc=f"train {'bm-vae/' + self.sampler_name if self.is_bm else 'gaussian-vae'}",
            disable=not progress,
        )
        inner = progress and -(-len(self.x_train) // self.batch_size) >= INNER_BAR_BATCHES
        for _ in bar:
            rec = self.train_epoch(progress=inner)
            bar.set_postfix(test_recon=f"{rec['test_recon']:.3f}", elbo=f"{rec['test_elbo']:.2f}")
            c = rec.get("negative_certificate")
            if c is not None and progress:
                tqdm.write(f"epoch {rec['epoch']}: negative phase ({c['num_samples']} chains) {c['verdict']}")
                if not c.get("ok"):
                    tqdm.write("  -> " + self.negative_phase_remedy(c))
            if checkpoint:
                self.save(checkpoint)
            if metrics_path:
                self.write_metrics(metrics_path)
        return self.history

    def negative_phase_remedy(self, c: dict[str, Any]) -> str:
        """One line: what a failed negative-phase certificate means for the training."""
        sweeps = getattr(self.negative, "sweeps", None)
        b = c.get("beta_eff")
        if "excludes the target" in str(c.get("verdict", "")) and b is not None and math.isfinite(b):
            side = "colder" if b > 1 else "hotter"
            return (
                f"the chains sample the prior at beta_eff {b:.3g}, not 1 ({side}: they lag behind the prior as it "
                f"learns), so the prior's gradient is that of a {side} copy and the learned energy is off by about "
                f"that factor; more sweeps per step (--sweeps, now {sweeps}) or more chains (--chains) close the gap"
            )
        return str(c.get("remedy") or "see the certificate's verdict")

    # ------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": "bm" if self.is_bm else "gaussian",
            "config": self.model.config,
            "model_state": self.model.state_dict(),
            "opt_state": self.opt.state_dict(),
            "gen_state": self.gen.get_state(),
            "negative": None if self.negative is None else self.negative.state_dict(),
            "trainer": {
                "sampler": self.sampler_name,
                "batch_size": self.batch_size,
                "lr": self.lr,
                "seed": self.seed,
                "num_chains": getattr(self.negative, "num_chains", 0),
                "sweeps": getattr(self.negative, "sweeps", 0),
                "dataset": self.data.name,
                "kl_warmup": self.kl_warmup,
                "kl_start": self.kl_start,
                "iw_samples": self.iw_samples,
                "holdout": self.holdout,
                "binarize": self.binarize,
            },
            "epoch": self.epoch,
            "history": self.history,
            "log_z": self.log_z_info,
            "wall": self.wall,
        }

    def save(self, path: str) -> None:
        save_atomic(self.state_dict(), path)

    @classmethod
    def from_checkpoint(cls, path: str, data: ImageData, **overrides: Any) -> VAETrainer:
        model, ck = load_vae(path)
        t = ck["trainer"]
        tr = cls(
            model,
            data,
            sampler=overrides.get("sampler", t["sampler"] if ck["kind"] == "bm" else "gibbs"),
            num_chains=t["num_chains"] or 128,
            sweeps=t["sweeps"] or 10,
            lr=t["lr"],
            batch_size=t["batch_size"],
            seed=t["seed"],
            num_threads=overrides.get("num_threads"),
            qpu=overrides.get("qpu"),
            kl_warmup=t.get("kl_warmup", 5),
            # checkpoints written before kl_start existed warmed up from 0
            kl_start=t.get("kl_start", 0.0),
            iw_samples=t.get("iw_samples", 50),
            device=overrides.get("device", "cpu"),
            holdout=t.get("holdout", ()),
            binarize=t.get("binarize", "none"),
        )
        tr.opt.load_state_dict(ck["opt_state"])
        tr.gen.set_state(ck["gen_state"])
        if tr.negative is not None and ck["negative"] is not None:
            tr.negative.load_state_dict(ck["negative"])
        tr.epoch, tr.history, tr.wall = ck["epoch"], ck["history"], ck["wall"]
        tr.log_z_info = ck["log_z"] if isinstance(ck.get("log_z"), dict) else None
        return tr

    def write_metrics(self, path: str, extra: dict[str, Any] | None = None) -> None:
        m = {
            "model": "bm-vae" if self.is_bm else "gaussian-vae",
            "sampler": self.sampler_name,
            "dataset": self.data.name,
            "latent": self.model.latent,
            "epochs": self.history,
            # the per-epoch monitor's numbers at the last epoch (K = iw_samples, cheap)
            "last_epoch_test_recon": self.history[-1]["test_recon"] if self.history else None,
            "last_epoch_test_iw_loglik": self.history[-1].get("test_iw_loglik") if self.history else None,
            "last_epoch_iw_samples": self.iw_samples,
            "binarize": self.binarize,
            "note": NOTE
            if self.binarize == "none"
            else (
                "IW log-likelihood in nats per image on dynamically binarised images (a fresh draw per training "
                "batch, one fixed binarisation of the test set per seed): the protocol of the binarised-MNIST "
                "literature"
            ),
            **(extra or {}),
        }
        final = m.get("final")
        if isinstance(final, dict) and final.get("iw_loglik") is not None:
            # the number a run reports (and compare/README quote): the final evaluation's
            m["reported"] = {
                "iw_loglik": final["iw_loglik"],
                "iw_samples": final.get("iw_samples"),
                "what": "IW log-likelihood of the test set at the final evaluation (nats per image); "
                "last_epoch_test_iw_loglik is the per-epoch monitor at fewer samples, not the reported number",
            }
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(m, fh, indent=1, default=float)
        os.replace(tmp, path)


def peak_rss_mb() -> float | None:
    """The process's peak resident set size in MB (None where the OS does not say)."""
    try:
        import resource
        import sys

        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return r / 2**20 if sys.platform == "darwin" else r / 2**10
    except (ImportError, OSError):
        return None


def load_vae(path: str) -> tuple[BMVAE | GaussianVAE, dict[str, Any]]:
    """The VAE stored at ``path`` by ``qbm train vae`` and its checkpoint; a ValueError
    naming ``model`` for anything else (a QGAN checkpoint, a config that cannot build a
    model, weights that do not fit the config)."""
    ck = load_checkpoint(path)
    if ck["kind"] not in ("bm", "gaussian"):
        raise ValueError(
            f"model: {path!r} is a {ck['kind']!r} checkpoint; this command needs a VAE written by qbm train vae"
        )
    try:
        model = build_model(ck["kind"], ck["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"model: {path!r}: its config cannot build a {ck['kind']} VAE ({e})") from None
    try:
        model.load_state_dict(ck["model_state"])
    except (RuntimeError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"model: {path!r}: the weights do not fit the model its config describes ({first})") from None
    model.eval()
    return model, ck


def build_model(kind: str, config: dict[str, Any]) -> BMVAE | GaussianVAE:
    cfg = dict(config)
    shape = tuple(cfg.pop("shape"))
    latent = cfg.pop("latent")
    if kind == "bm":
        return BMVAE(shape, latent, **cfg)
    if kind == "gaussian":
        return GaussianVAE(shape, latent, **cfg)
    raise ValueError(f"model: unknown checkpoint kind {kind!r}")


@torch.no_grad()
def _deterministic_recon(model: BMVAE | GaussianVAE, x: torch.Tensor) -> float:
    from qbm.models.vae import reconstruction_loss

    return float(reconstruction_loss(model.most_likely_logits(x), x, model.likelihood).mean())


@torch.no_grad()
def ood_auroc(trainer: VAETrainer, x_in: np.ndarray, x_out: np.ndarray) -> dict[str, float]:
    """AUROC of out-of-distribution scores (higher = more anomalous): the prior energy of
    the encoded means (BM: E(m); Gaussian: |mu|^2 / 2, its negative log density up to a
    constant) and the negative ELBO (per example, one posterior sample). Images are scored as
    the model was trained: with dynamic binarisation both sets get one fixed Bernoulli draw."""
    from qbm._logistic import roc_auc

    model = trainer.model
    g = torch.Generator().manual_seed(int(trainer.seed) * 7919 + 29)

    def prep(x: np.ndarray) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(x, dtype=np.float32))
        if trainer.binarize == "dynamic":
            t = torch.bernoulli(t, generator=g)
        return t.to(trainer.device)

    def scores(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        parts = [score_chunk(prep(x[s : s + 2048])) for s in range(0, len(x), 2048)]  # bounded memory
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def score_chunk(xt: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(model, BMVAE):
            t = model.elbo_terms(xt, torch.Generator().manual_seed(0))
            energy = model.prior.energy(t["mean"])
            neg_elbo = t["recon"] + t["kl_no_log_z"] + trainer.log_z
        else:
            t = model.elbo_terms(xt, torch.Generator().manual_seed(0))
            neg_elbo = t["recon"] + t["kl"]
            energy = 0.5 * t["mean"].pow(2).sum(1)
        return energy.double().cpu().numpy(), neg_elbo.double().cpu().numpy()

    e_in, n_in = scores(x_in)
    e_out, n_out = scores(x_out)
    lab = np.concatenate([np.zeros(len(x_in)), np.ones(len(x_out))])
    return {
        "auroc_prior_energy": roc_auc(lab, np.concatenate([e_in, e_out])),
        "auroc_neg_elbo": roc_auc(lab, np.concatenate([n_in, n_out])),
        "in_images": int(len(x_in)),
        "out_images": int(len(x_out)),
    }


def epochs_to_reach(history: list[dict[str, Any]], threshold: float, key: str = "test_recon") -> int | None:
    """First epoch whose ``key`` reaches ``threshold`` (<= for losses, >= for ELBO /
    log-likelihood keys)."""
    higher_better = key in ("test_elbo", "test_iw_loglik")
    for rec in history:
        v = rec.get(key)
        if v is not None and (v >= threshold if higher_better else v <= threshold):
            return int(rec["epoch"])
    return None
