"""Training latent GANs (quantum style-based or classical generator), FID, stability, and
the capacity-scaling study."""

from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from qbm._adam import Adam
from qbm.data.images import ImageData
from qbm.metrics import fid_from_features
from qbm.models.qgan import (
    ClassicalGenerator,
    Discriminator,
    LatentAutoencoder,
    StyleQuantumGenerator,
    count_params,
)
from qbm.checkpoint import BestWeights, load_checkpoint, load_file, save_atomic


@dataclass
class QGANConfig:
    dataset: str = "digits"
    data_dir: str | None = None
    generator: str = "quantum"  # or "classical"
    qubits: int = 4
    layers: int = 2
    readout: str = "auto"
    latent: int = 8
    gen_width: int = 16
    gen_depth: int = 2
    disc_width: int = 32
    disc_depth: int = 2
    loss: str = "wgan-gp"  # or "ns"
    gp_lambda: float = 10.0
    n_critic: int = 5
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    batch_size: int = 64
    epochs: int = 20
    iters_per_epoch: int = 50  # generator updates between two FID evaluations
    eval_samples: int = 500
    seed: int = 0
    ae_epochs: int = 80
    clf_epochs: int = 30
    stability_window: float = 0.3
    stability_threshold: float = 0.2
    # Adam's second-moment decay (None: 0.9 for wgan-gp, 0.999 for ns; the capacity study's
    # calibration decides between the two)
    adam_beta2: float | None = None
    # exponential moving average of the generator's weights: half-life as a fraction of the
    # generator steps (bias-corrected; evaluated beside the raw weights)
    ema_half_life: float = 0.05
    # the last ``tail_fid_fraction`` of the epochs also get the large FID (TAIL_FID_SAMPLES
    # generated latents against as many test images) for the raw and the EMA weights
    tail_fid_fraction: float = 0.0
    # which weights get the large FID: "both" (the calibration compares them), "ema" or "raw"
    # (a study measures only what its rule reads)
    tail_weights: str = "both"
    # the latent MMD beside the cheap FID each epoch (a 1000-point median bandwidth, about
    # 0.1 s an epoch; the capacity study reads neither it nor its trace)
    monitor_mmd: bool = True
    # after training: FID of the final generators over this many fresh generated sets and
    # bootstrapped real sets (the FID's own sampling noise at the large size)
    noise_repeats: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class EMAWeights:
    """Exponential moving average of a module's floating-point parameters and buffers,
    bias-corrected: after t updates with decay a the average is
    sum_s a^(t-s) (1 - a) theta_s / (1 - a^t), so a constant theta is returned exactly
    from the first update on (no pull towards the zero initial value)."""

    def __init__(self, module: torch.nn.Module, half_life_steps: float) -> None:
        if not half_life_steps > 0:
            raise ValueError(f"ema_half_life: the half-life must be > 0 steps, got {half_life_steps}")
        self.decay = 0.5 ** (1.0 / half_life_steps)
        self.steps = 0
        self.shadow = {k: torch.zeros_like(v) for k, v in module.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        self.steps += 1
        for k, v in module.state_dict().items():
            if k in self.shadow:
                self.shadow[k].mul_(self.decay).add_(v.detach(), alpha=1 - self.decay)

    @torch.no_grad()
    def averaged(self) -> dict[str, torch.Tensor]:
        """The bias-corrected average (empty before the first update)."""
        if self.steps == 0:
            return {}
        c = 1.0 - self.decay**self.steps
        return {k: v / c for k, v in self.shadow.items()}

    def copy_to(self, module: torch.nn.Module) -> None:
        """Load the average into ``module`` (a copy of the averaged one); non-float
        entries keep the module's own values."""
        module.load_state_dict({**module.state_dict(), **self.averaged()})

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "steps": self.steps, "shadow": self.shadow}

    def load_state_dict(self, st: dict[str, Any]) -> None:
        self.decay, self.steps = float(st["decay"]), int(st["steps"])
        self.shadow = {k: v.clone() for k, v in st["shadow"].items()}


# generated latents per large FID, and test images they are compared with (all of a smaller
# test set: digits has 359)
TAIL_FID_SAMPLES = 5000
TAIL_WEIGHTS = ("both", "ema", "raw")


# ------------------------------------------------------------------ shared pieces
PATIENCE = 5  # epochs without a better validation loss before the autoencoder stops
AE_ATTEMPTS = 3  # seeds tried before a collapsed autoencoder is an error
AE_COLLAPSE = 0.01  # codes whose every coordinate varies less than this over images: collapsed
# images per autoencoder epoch at most: on full-size SAT-4 (360k training images) an epoch is
# this many images of a running shuffle, so early stopping looks at the validation loss every
# 50k images and the worst case (80 epochs) is 11 passes, about 45 min on one core
EPOCH_IMAGES = 50_000


class Shared:
    """Frozen autoencoder, FID features, encoded training latents and real features.

    The FID feature network is the data set's judge (:class:`qbm.generation.Judge`: one
    per data set, fixed seed, cached by content), so every latent size and every run of a
    study measures FID in the same feature space. With ``cache`` the whole object (the
    autoencoder, the judge's weights, the encoded training latents, the real test
    features and the FID floor) is stored under a content key of the data and the
    preparation config; :meth:`from_cache` rebuilds it without the images, so a study's
    runs never reload or re-encode the data. A cache whose key differs is rebuilt."""

    def __init__(
        self,
        data: ImageData,
        latent: int,
        *,
        seed: int = 0,
        ae_epochs: int = 80,
        clf_epochs: int = 30,  # kept for the config's sake: the judge trains its own fixed schedule
        eval_samples: int = 500,
        cache: str | None = None,
        progress: bool = False,
    ) -> None:
        from qbm.generation import Judge

        self.latent = latent
        self.key = self.content_key(data, latent, seed=seed, ae_epochs=ae_epochs, eval_samples=eval_samples)
        self.loaded = False
        if cache and os.path.exists(cache) and self._load(cache, expect_key=self.key):
            self.loaded = True
            return
        self.data = data
        # an autoencoder that gives every image the same code has collapsed (MNIST at latent
        # 5 did: reconstruction FID 2260, a floor that would call any generator "low"): it is
        # trained again from the next seed
        failed: list[float] = []
        for attempt in range(AE_ATTEMPTS):
            torch.manual_seed(seed + attempt)
            self.ae = LatentAutoencoder(data.shape, latent)
            self.ae_report = self._train_ae(ae_epochs, seed + attempt, progress)
            if self.ae_report["val_code_sd"] >= AE_COLLAPSE:
                break
            failed.append(self.ae_report["val_code_sd"])
        else:
            raise RuntimeError(
                f"latent: the {latent}-latent autoencoder collapsed on {AE_ATTEMPTS} seeds (every validation "
                f"image gets the same code; largest code standard deviation {max(failed):.2g})"
            )
        self.ae_report["collapsed_attempts"] = len(failed)
        judge = Judge(data)
        self.judge, self.clf, self.clf_accuracy = judge, judge.net, judge.accuracy
        self._freeze()
        from qbm.data.images import iter_float_chunks

        with torch.no_grad():  # in chunks: a uint8 (memory-mapped) set is never float as a whole
            self.z_train = torch.cat([self.ae.encode(torch.as_tensor(c)) for c in iter_float_chunks(data.x_train)])
            real, rec = [], []  # one pass: the test images' features and their reconstructions'
            for c in iter_float_chunks(data.x_test):
                t = torch.as_tensor(c)
                real.append(self.features(t))
                rec.append(self.features(self.ae(t)))
            self.real_feats = np.concatenate(real)
            n = min(eval_samples, len(data.x_train))
            idx = np.random.default_rng(seed).choice(len(data.x_train), n, replace=False)
            self.fid_floor = fid_from_features(self.features(torch.as_tensor(data.rows("train", idx))), self.real_feats)
            self.ae_report["fid_reconstructions"] = fid_from_features(np.concatenate(rec), self.real_feats)
            # the large FID's pieces: a fixed set of test images (all of a small test set), and
            # the best a latent generator can reach at this latent size and sample size: the
            # autoencoder's reconstructions of as many training images, against those images
            rng = np.random.default_rng(seed + 1)
            self.real_feats_big = self.real_feats[np.sort(rng.permutation(len(self.real_feats))[:TAIL_FID_SAMPLES])]
            n = min(TAIL_FID_SAMPLES, len(data.x_train))
            tidx = np.sort(rng.choice(len(data.x_train), n, replace=False))
            xb = torch.as_tensor(data.rows("train", tidx))
            rec_big = self.features(torch.cat([self.ae(xb[s : s + 2048]) for s in range(0, len(xb), 2048)]))
            self.fid_recon_big = fid_from_features(rec_big, self.real_feats_big)
            self.fid_floor_big = fid_from_features(self.features(xb), self.real_feats_big)
            # the real set's own noise at this size: the spread of the reconstructions' FID
            # over bootstrap resamples of the real set
            boots = [fid_from_features(rec_big, self.real_feats_big[rng.integers(0, len(self.real_feats_big),
                                                                                  len(self.real_feats_big))])
                     for _ in range(10)]  # fmt: skip
            self.real_noise_big = float(np.std(boots, ddof=1))
        self.shape = tuple(data.shape)
        self.num_classes = int(data.num_classes)
        self.dataset = data.name
        if cache:
            save_atomic(
                {
                    "key": self.key,
                    "latent": latent,
                    "dataset": data.name,
                    "shape": list(self.shape),
                    "num_classes": self.num_classes,
                    "ae": self.ae.state_dict(),
                    "clf": self.clf.state_dict(),
                    "ae_report": self.ae_report,
                    "clf_accuracy": self.clf_accuracy,
                    "z_train": self.z_train.numpy(),
                    "real_feats": self.real_feats,
                    "fid_floor": self.fid_floor,
                    "real_feats_big": self.real_feats_big,
                    "fid_recon_big": self.fid_recon_big,
                    "fid_floor_big": self.fid_floor_big,
                    "real_noise_big": self.real_noise_big,
                },
                cache,
            )

    @staticmethod
    def content_key(
        data: ImageData, latent: int, *, seed: int = 0, ae_epochs: int = 80, eval_samples: int = 500
    ) -> str:
        """The key of the prepared pieces: the data's content and the preparation config."""
        from qbm.generation import content_key, validation_split

        cfg: dict[str, Any] = {"latent": latent, "seed": seed, "ae_epochs": ae_epochs, "eval_samples": eval_samples,
                               "format": 2, "tail_fid_samples": TAIL_FID_SAMPLES}  # fmt: skip
        if len(validation_split(len(data.x_train), 0.1, seed)[0]) > EPOCH_IMAGES:  # in the key only where it binds
            cfg["epoch_images"] = EPOCH_IMAGES
        return content_key(data.x_train, data.y_train, data.x_test, config=cfg)

    @staticmethod
    def cache_path(data: ImageData, latent: int, **kw: Any) -> tuple[str, str]:
        """(key, path) of the prepared pieces in qbm's cache directory (``QBM_CACHE_DIR``):
        every study, run and worker on the same data and config shares them."""
        from qbm.data.cache import cache_dir

        key = Shared.content_key(data, latent, **kw)
        return key, os.path.join(cache_dir(), "qgan", f"shared-{data.name}-latent{latent}-{key}.pt")

    def _freeze(self) -> None:
        self.ae.eval()
        self.clf.eval()
        for p in list(self.ae.parameters()) + list(self.clf.parameters()):
            p.requires_grad_(False)

    def _load(self, path: str, expect_key: str | None = None) -> bool:
        try:
            ck = load_file(path)
        except ValueError:  # a corrupt cache is rebuilt
            return False
        if not isinstance(ck, dict) or "real_feats_big" not in ck or (expect_key and ck.get("key") != expect_key):
            return False  # another key, or a cache written before the large FID's pieces existed
        self.key, self.latent, self.dataset = ck["key"], int(ck["latent"]), ck["dataset"]
        self.shape, self.num_classes = tuple(ck["shape"]), int(ck["num_classes"])
        self.ae = LatentAutoencoder(self.shape, self.latent)
        from qbm.generation import Judge

        self.judge = Judge.from_weights(self.shape, self.num_classes, ck["clf"])
        self.clf = self.judge.net
        self.ae.load_state_dict(ck["ae"])
        self._freeze()
        self.ae_report, self.clf_accuracy = ck["ae_report"], ck["clf_accuracy"]
        self.z_train = torch.as_tensor(np.asarray(ck["z_train"]))
        self.real_feats = np.asarray(ck["real_feats"])
        self.fid_floor = float(ck["fid_floor"])
        self.real_feats_big = np.asarray(ck["real_feats_big"])
        self.fid_recon_big, self.fid_floor_big = float(ck["fid_recon_big"]), float(ck["fid_floor_big"])
        self.real_noise_big = float(ck["real_noise_big"])
        return True

    @classmethod
    def from_cache(cls, path: str, *, latent: int | None = None, dataset: str | None = None) -> Shared | None:
        """The prepared pieces from ``path`` without the images (None when the file is
        missing, corrupt or for another latent size / data set)."""
        if not path or not os.path.exists(path):
            return None
        obj = cls.__new__(cls)
        if not obj._load(path):
            return None
        if (latent is not None and obj.latent != latent) or (dataset is not None and obj.dataset != dataset):
            return None
        return obj

    def _train_ae(self, epochs: int, seed: int, progress: bool) -> dict[str, float]:
        """At most ``epochs`` epochs, stopped early when the loss on a validation split of
        the training images (10%) has not improved for :data:`PATIENCE` epochs; the best
        epoch's weights are kept and the report says what was reached."""
        from qbm.generation import validation_split

        from qbm.data.images import to_float01

        g = torch.Generator().manual_seed(seed)
        x_all = self.data.x_train  # uint8 sets stay uint8: rows are converted per batch
        fit, val = validation_split(len(x_all), 0.1, seed)
        opt = Adam(self.ae.parameters(), lr=2e-3)
        stop = BestWeights(PATIENCE, lambda v, best: v < best - 1e-6, math.inf)
        ran = 0
        bar = tqdm(range(epochs), desc="autoencoder", disable=not progress)
        per_epoch = min(len(fit), EPOCH_IMAGES)
        order = np.empty(0, dtype=np.int64)
        for ep in bar:
            # an epoch is the next per_epoch images of a running shuffle: every image once per
            # epoch on small sets (as before), bounded steps between validations on big ones
            while len(order) < per_epoch:
                order = np.concatenate([order, torch.randperm(len(fit), generator=g).numpy()])
            take, order = order[:per_epoch], order[per_epoch:]
            for s in range(0, per_epoch, 64):
                xb = torch.as_tensor(to_float01(x_all[fit[take[s : s + 64]]]))
                loss = self.ae.loss(xb)
                opt.zero_grad()
                loss.backward()
                opt.step()
            ran = ep + 1
            v = self._mse(x_all[val])
            bar.set_postfix(val_mse=f"{v:.4f}")
            if stop.update(ran, v, self.ae):
                break
        stop.restore(self.ae)
        best, best_epoch = stop.best, stop.best_epoch
        mse = self._mse(self.data.x_test)
        return {"test_mse": mse, "val_mse": best, "epochs": ran, "best_epoch": best_epoch, "max_epochs": epochs,
                "images_per_epoch": per_epoch, "val_code_sd": self._code_spread(x_all[val])}  # fmt: skip

    @torch.no_grad()
    def _code_spread(self, x: Any, chunk: int = 4096) -> float:
        """The largest standard deviation of one latent coordinate over the codes of
        ``x`` (0 when every image gets the same code)."""
        from qbm.data.images import iter_float_chunks

        z = torch.cat([self.ae.encode(torch.as_tensor(c)) for c in iter_float_chunks(x, chunk)])
        return float(z.double().std(0).max()) if len(z) > 1 else 0.0

    @torch.no_grad()
    def _mse(self, x: Any, chunk: int = 4096) -> float:
        """Reconstruction MSE of float or uint8 images, in chunks (one chunk: exactly
        ``F.mse_loss`` over the set)."""
        from qbm.data.images import iter_float_chunks

        tot, count = 0.0, 0
        for c in iter_float_chunks(x, chunk):
            t = torch.as_tensor(c)
            tot += float(F.mse_loss(self.ae(t), t)) * t.numel()
            count += t.numel()
        return tot / count

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> np.ndarray:
        """The data set's judge's features (:meth:`qbm.generation.Judge.features`)."""
        return self.judge.features(images)

    @torch.no_grad()
    def decoded_features(self, z: torch.Tensor, chunk: int = 2048) -> np.ndarray:
        """Judge features of latents decoded to images, in chunks of ``chunk`` latents."""
        z = z.float()
        return self.features(torch.cat([self.ae.decode(z[s : s + chunk]) for s in range(0, len(z), chunk)]))

    def fid_of_latents(self, z: torch.Tensor) -> float:
        return fid_from_features(self.decoded_features(z), self.real_feats)

    def fid_big(self, z: torch.Tensor) -> float:
        """FID of many generated latents against the fixed large real set."""
        return fid_from_features(self.decoded_features(z), self.real_feats_big)


def build_generator(cfg: QGANConfig) -> torch.nn.Module:
    if cfg.generator == "quantum":
        readout = cfg.readout
        if readout == "auto":
            readout = "z" if cfg.latent == cfg.qubits else "zx" if cfg.latent == 2 * cfg.qubits else ""
        if not readout:
            raise ValueError(
                f"latent: a {cfg.qubits}-qubit generator outputs {cfg.qubits} (<Z>) or "
                f"{2 * cfg.qubits} (<Z>, <X>) values, not {cfg.latent}"
            )
        return StyleQuantumGenerator(cfg.qubits, cfg.layers, readout=readout, seed=cfg.seed)
    if cfg.generator == "classical":
        return ClassicalGenerator(cfg.latent, width=cfg.gen_width, depth=cfg.gen_depth)
    raise ValueError(f"generator: unknown value {cfg.generator!r}; choose quantum or classical")


def stability_verdict(
    fids: list[float], floor: float, initial: float, window: float, threshold: float
) -> dict[str, Any]:
    """ "Optimal" training: over the last ``window`` fraction of evaluations the FID is
    stable (std / mean below ``threshold``) and low (mean at most floor + 25% of the
    way from the floor back up to the untrained generator's FID)."""
    k = max(2, int(math.ceil(window * len(fids))))
    tail = np.asarray(fids[-k:], dtype=float)
    mean, std = float(tail.mean()), float(tail.std())
    spread = std / mean if mean > 0 else math.inf
    low_bar = floor + 0.25 * max(initial - floor, 0.0)
    return {
        "tail_mean_fid": mean,
        "tail_rel_spread": spread,
        "low_bar": low_bar,
        "stable": bool(spread < threshold),
        "low": bool(mean <= low_bar),
        "optimal": bool(spread < threshold and mean <= low_bar),
    }


def gradient_penalty(disc: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    eps = torch.rand(real.shape[0], 1, generator=g)
    x = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(disc(x).sum(), x, create_graph=True)
    return ((grad.norm(dim=1) - 1) ** 2).mean()


def train_qgan(
    cfg: QGANConfig,
    shared: Shared,
    *,
    progress: bool = True,
    out: str | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Train one latent GAN; ``on_epoch(epoch, fid)`` after every epoch's evaluation (a
    study run reports its progress through it)."""
    if cfg.loss not in ("wgan-gp", "ns"):
        raise ValueError(f"loss: unknown value {cfg.loss!r}; choose wgan-gp or ns")
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    gen = build_generator(cfg)
    disc = Discriminator(cfg.latent, width=cfg.disc_width, depth=cfg.disc_depth)
    if cfg.adam_beta2 is not None and not 0.0 <= cfg.adam_beta2 < 1.0:
        raise ValueError(f"adam_beta2: must lie in [0, 1), got {cfg.adam_beta2}")
    if cfg.tail_weights not in TAIL_WEIGHTS:
        raise ValueError(f"tail_weights: unknown value {cfg.tail_weights!r}; choose one of {TAIL_WEIGHTS}")
    if not 0.0 <= cfg.tail_fid_fraction <= 1.0:
        raise ValueError(f"tail_fid_fraction: must lie in [0, 1], got {cfg.tail_fid_fraction}")
    betas = (0.5, cfg.adam_beta2 if cfg.adam_beta2 is not None else 0.9 if cfg.loss == "wgan-gp" else 0.999)
    total_steps = cfg.epochs * cfg.iters_per_epoch
    if not cfg.ema_half_life > 0:
        raise ValueError(f"ema_half_life: must be > 0 (a fraction of the generator steps), got {cfg.ema_half_life}")
    ema = EMAWeights(gen, cfg.ema_half_life * total_steps)
    gen_ema = copy.deepcopy(gen)
    # epochs (1-based) that get the large FID: the last tail_fid_fraction of them
    first_tail = cfg.epochs - int(math.floor(cfg.tail_fid_fraction * cfg.epochs + 1e-9)) + 1
    big_noise = (
        gen.sample_noise(TAIL_FID_SAMPLES, torch.Generator().manual_seed(cfg.seed + 11))
        if first_tail <= cfg.epochs
        else None
    )
    opt_g = Adam(gen.parameters(), lr=cfg.lr_g, betas=betas)
    opt_d = Adam(disc.parameters(), lr=cfg.lr_d, betas=betas)
    ck_path = os.path.join(out, "checkpoint.pt") if out else None
    history: dict[str, list[float]] = {"fid": [], "latent_mmd": [], "d_loss": [], "g_loss": [], "tail_epochs": [],
                                       "tail_fid_raw": [], "tail_fid_ema": []}  # fmt: skip
    start_epoch = 0
    eval_noise = gen.sample_noise(cfg.eval_samples, torch.Generator().manual_seed(cfg.seed + 7))

    def evaluate() -> tuple[float, float]:
        from qbm.mmd import mmd2

        with torch.no_grad():
            z = gen(eval_noise)
        if not cfg.monitor_mmd:
            return shared.fid_of_latents(z), float("nan")
        idx = torch.randperm(len(shared.z_train), generator=torch.Generator().manual_seed(1))[: cfg.eval_samples]
        return shared.fid_of_latents(z), mmd2(z.numpy(), shared.z_train[idx].numpy(), "median", kernel="rbf")

    initial_fid, _ = evaluate()
    if ck_path and os.path.exists(ck_path):
        ck = load_checkpoint(ck_path)
        # settings a checkpoint predates (the EMA, the large FID) are read as their defaults
        stored = {**asdict(QGANConfig()), **dict(ck.get("config") or {})}
        want = asdict(cfg)
        diff = sorted(k for k in set(stored) | set(want) if k != "epochs" and stored.get(k) != want.get(k))
        if diff:
            raise ValueError(
                f"--resume: the checkpoint in {out!r} was trained with different settings ({', '.join(diff)}); "
                "use --force to start over"
            )
        # same run: continue (also to a larger number of epochs)
        gen.load_state_dict(ck["model_state"]["gen"])
        disc.load_state_dict(ck["model_state"]["disc"])
        opt_g.load_state_dict(ck["opt_g"])
        opt_d.load_state_dict(ck["opt_d"])
        g.set_state(ck["gen_state"])
        history, start_epoch = ck["history"], ck["epoch"]
        if "ema" in ck:  # continued to more epochs: the average goes on at this run's half-life
            decay = ema.decay
            ema.load_state_dict(ck["ema"])
            ema.decay = decay
        keep = [i for i, e in enumerate(history.get("tail_epochs", [])) if e >= first_tail]  # the tail moved
        for k in ("tail_epochs", "tail_fid_raw", "tail_fid_ema"):
            history[k] = [history[k][i] for i in keep] if k in history else []
    z_real_all = shared.z_train
    t0 = time.perf_counter()
    bar = tqdm(range(start_epoch, cfg.epochs), desc=f"{cfg.generator} GAN", disable=not progress)
    for epoch in bar:
        dl, gl = [], []
        n_crit = cfg.n_critic if cfg.loss == "wgan-gp" else 1
        for _ in range(cfg.iters_per_epoch):
            for _ in range(n_crit):
                real = z_real_all[torch.randint(len(z_real_all), (cfg.batch_size,), generator=g)]
                b = len(real)
                with torch.no_grad():  # the critic's step needs no generator graph
                    fake = gen(gen.sample_noise(b, g))
                if cfg.loss == "wgan-gp":
                    d_loss = (
                        disc(fake).mean() - disc(real).mean() + cfg.gp_lambda * gradient_penalty(disc, real, fake, g)
                    )
                else:
                    d_loss = F.softplus(-disc(real)).mean() + F.softplus(disc(fake)).mean()
                opt_d.zero_grad()
                d_loss.backward()
                opt_d.step()
                dl.append(float(d_loss.detach()))
            out_fake = disc(gen(gen.sample_noise(cfg.batch_size, g)))
            g_loss = -out_fake.mean() if cfg.loss == "wgan-gp" else F.softplus(-out_fake).mean()
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            ema.update(gen)
            gl.append(float(g_loss.detach()))
        fid, lat_mmd = evaluate()
        if epoch + 1 >= first_tail and big_noise is not None:
            ema.copy_to(gen_ema)
            with torch.no_grad():  # each from the same fixed noise: one never moves the other
                history["tail_epochs"].append(epoch + 1)
                if cfg.tail_weights != "ema":
                    history["tail_fid_raw"].append(shared.fid_big(gen(big_noise)))
                if cfg.tail_weights != "raw":
                    history["tail_fid_ema"].append(shared.fid_big(gen_ema(big_noise)))
        history["fid"].append(fid)
        history["latent_mmd"].append(lat_mmd)
        history["d_loss"].append(float(np.mean(dl)))
        history["g_loss"].append(float(np.mean(gl)) if gl else float("nan"))
        bar.set_postfix(fid=f"{fid:.2f}")
        if on_epoch is not None:
            on_epoch(epoch + 1, fid)
        if ck_path:
            save_atomic(
                {
                    "kind": "qgan",
                    "config": asdict(cfg),
                    "model_state": {"gen": gen.state_dict(), "disc": disc.state_dict()},
                    "opt_g": opt_g.state_dict(),
                    "opt_d": opt_d.state_dict(),
                    "gen_state": g.get_state(),
                    "ema": ema.state_dict(),
                    "history": history,
                    "epoch": epoch + 1,
                },
                ck_path,
            )
    verdict = (
        stability_verdict(history["fid"], shared.fid_floor, initial_fid, cfg.stability_window, cfg.stability_threshold)
        if len(history["fid"]) >= 2
        else {"optimal": False}
    )
    noise: dict[str, Any] = {}
    if cfg.noise_repeats > 0:  # the large FID's sampling noise: fresh generated sets, resampled real sets
        ema.copy_to(gen_ema)
        ng = torch.Generator().manual_seed(cfg.seed + 13)
        with torch.no_grad():
            for name, m in (("raw", gen), ("ema", gen_ema)):
                v = [shared.fid_big(m(gen.sample_noise(TAIL_FID_SAMPLES, ng))) for _ in range(cfg.noise_repeats)]
                noise[f"generated_{name}"] = v
        noise["real_bootstrap_sd"] = shared.real_noise_big
    result = {
        "config": asdict(cfg),
        "fid_noise": noise,
        "fid_recon_big": shared.fid_recon_big,
        "fid_floor_big": shared.fid_floor_big,
        "generator_params": count_params(gen),
        "discriminator_params": count_params(disc),
        "initial_fid": initial_fid,
        "fid_floor_real_vs_real": shared.fid_floor,
        "history": history,
        "final_fid": history["fid"][-1] if history["fid"] else initial_fid,
        "verdict": verdict,
        "seconds": time.perf_counter() - t0,
        "ae": shared.ae_report,
        "fid_classifier_accuracy": shared.clf_accuracy,
        "fid_note": "FID features come from a classifier trained on this data set (Inception weights are not "
        "available offline), so values are not comparable with Inception FID.",
    }
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "metrics.json"), "w") as fh:
            json.dump(result, fh, indent=1)
        from qbm.plotting import save_curves, save_image_grid

        with torch.no_grad():
            imgs = shared.ae.decode(gen(eval_noise[:64]).float()).numpy()
        save_image_grid(
            os.path.join(out, "samples.png"),
            imgs.transpose(0, 2, 3, 1),
            title=f"{cfg.generator} generator, final FID {result['final_fid']:.2f}",
        )
        save_curves(
            os.path.join(out, "curves.png"),
            {"FID": history["fid"], "floor (real vs real)": [shared.fid_floor] * len(history["fid"])},
            xlabel="epoch",
            ylabel="FID",
            title=f"{cfg.generator} GAN on {cfg.dataset}: optimal={verdict.get('optimal')}",
        )
    return result
