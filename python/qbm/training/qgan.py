"""Training latent GANs (quantum style-based or classical generator), FID, stability, and
the capacity-scaling study."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from qbm.data.images import ImageData
from qbm.metrics import fid_from_features
from qbm.models.qgan import (
    ClassicalGenerator,
    Discriminator,
    FeatureClassifier,
    LatentAutoencoder,
    StyleQuantumGenerator,
    count_params,
)
from qbm.training.checkpoint import load_checkpoint, load_file, save_atomic


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
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------ shared pieces
PATIENCE = 5  # epochs without a better validation loss before the autoencoder stops


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
        from qbm.generation import Judge, content_key

        self.latent = latent
        cfg = {"latent": latent, "seed": seed, "ae_epochs": ae_epochs, "eval_samples": eval_samples}
        self.key = content_key(data.x_train, data.y_train, data.x_test, config=cfg)
        if cache and os.path.exists(cache) and self._load(cache, expect_key=self.key):
            return
        torch.manual_seed(seed)
        self.ae = LatentAutoencoder(data.shape, latent)
        self.data = data
        self.ae_report = self._train_ae(ae_epochs, seed, progress)
        judge = Judge(data)
        self.clf, self.clf_accuracy = judge.net, judge.accuracy
        self._freeze()
        with torch.no_grad():
            self.z_train = self.ae.encode(torch.as_tensor(data.x_train))
            self.real_feats = self.features(torch.as_tensor(data.x_test))
            n = min(eval_samples, len(data.x_train))
            idx = np.random.default_rng(seed).choice(len(data.x_train), n, replace=False)
            self.fid_floor = fid_from_features(self.features(torch.as_tensor(data.x_train[idx])), self.real_feats)
            recon = self.ae(torch.as_tensor(data.x_test))
            self.ae_report["fid_reconstructions"] = fid_from_features(self.features(recon), self.real_feats)
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
                },
                cache,
            )

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
        if not isinstance(ck, dict) or "z_train" not in ck or (expect_key and ck.get("key") != expect_key):
            return False
        self.key, self.latent, self.dataset = ck["key"], int(ck["latent"]), ck["dataset"]
        self.shape, self.num_classes = tuple(ck["shape"]), int(ck["num_classes"])
        self.ae = LatentAutoencoder(self.shape, self.latent)
        self.clf = FeatureClassifier(self.shape, self.num_classes)
        self.ae.load_state_dict(ck["ae"])
        self.clf.load_state_dict(ck["clf"])
        self._freeze()
        self.ae_report, self.clf_accuracy = ck["ae_report"], ck["clf_accuracy"]
        self.z_train = torch.as_tensor(np.asarray(ck["z_train"]))
        self.real_feats = np.asarray(ck["real_feats"])
        self.fid_floor = float(ck["fid_floor"])
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

        g = torch.Generator().manual_seed(seed)
        fit, val = validation_split(len(self.data.x_train), 0.1, seed)
        x = torch.as_tensor(self.data.x_train[fit])
        xv = torch.as_tensor(self.data.x_train[val])
        opt = torch.optim.Adam(self.ae.parameters(), lr=2e-3)
        best, best_state, best_epoch, ran = math.inf, None, 0, 0
        bar = tqdm(range(epochs), desc="autoencoder", disable=not progress)
        for ep in bar:
            perm = torch.randperm(len(x), generator=g)
            for s in range(0, len(x), 64):
                xb = x[perm[s : s + 64]]
                loss = self.ae.loss(xb)
                opt.zero_grad()
                loss.backward()
                opt.step()
            ran = ep + 1
            with torch.no_grad():
                v = float(F.mse_loss(self.ae(xv), xv))
            bar.set_postfix(val_mse=f"{v:.4f}")
            if v < best - 1e-6:
                best, best_epoch = v, ran
                best_state = {k: t.detach().clone() for k, t in self.ae.state_dict().items()}
            elif ran - best_epoch >= PATIENCE:
                break
        if best_state is not None:
            self.ae.load_state_dict(best_state)
        with torch.no_grad():
            xt = torch.as_tensor(self.data.x_test)
            mse = float(F.mse_loss(self.ae(xt), xt))
        return {"test_mse": mse, "val_mse": best, "epochs": ran, "best_epoch": best_epoch, "max_epochs": epochs}

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> np.ndarray:
        return self.clf.features(images).numpy()

    @torch.no_grad()
    def fid_of_latents(self, z: torch.Tensor) -> float:
        return fid_from_features(self.features(self.ae.decode(z.float())), self.real_feats)


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


def train_qgan(cfg: QGANConfig, shared: Shared, *, progress: bool = True, out: str | None = None) -> dict[str, Any]:
    if cfg.loss not in ("wgan-gp", "ns"):
        raise ValueError(f"loss: unknown value {cfg.loss!r}; choose wgan-gp or ns")
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    gen = build_generator(cfg)
    disc = Discriminator(cfg.latent, width=cfg.disc_width, depth=cfg.disc_depth)
    betas = (0.5, 0.9) if cfg.loss == "wgan-gp" else (0.5, 0.999)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr_g, betas=betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_d, betas=betas)
    ck_path = os.path.join(out, "checkpoint.pt") if out else None
    history: dict[str, list[float]] = {"fid": [], "latent_mmd": [], "d_loss": [], "g_loss": []}
    start_epoch = 0
    eval_noise = gen.sample_noise(cfg.eval_samples, torch.Generator().manual_seed(cfg.seed + 7))

    def evaluate() -> tuple[float, float]:
        from qbm.mmd import mmd2

        with torch.no_grad():
            z = gen(eval_noise)
        idx = torch.randperm(len(shared.z_train), generator=torch.Generator().manual_seed(1))[: cfg.eval_samples]
        return shared.fid_of_latents(z), mmd2(z.numpy(), shared.z_train[idx].numpy(), "median", kernel="rbf")

    initial_fid, _ = evaluate()
    if ck_path and os.path.exists(ck_path):
        ck = load_checkpoint(ck_path)
        stored = dict(ck.get("config") or {})
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
            gl.append(float(g_loss.detach()))
        fid, lat_mmd = evaluate()
        history["fid"].append(fid)
        history["latent_mmd"].append(lat_mmd)
        history["d_loss"].append(float(np.mean(dl)))
        history["g_loss"].append(float(np.mean(gl)) if gl else float("nan"))
        bar.set_postfix(fid=f"{fid:.2f}")
        if ck_path:
            save_atomic(
                {
                    "kind": "qgan",
                    "config": asdict(cfg),
                    "model_state": {"gen": gen.state_dict(), "disc": disc.state_dict()},
                    "opt_g": opt_g.state_dict(),
                    "opt_d": opt_d.state_dict(),
                    "gen_state": g.get_state(),
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
    result = {
        "config": asdict(cfg),
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


# ------------------------------------------------------------------ capacity study
# Optimality, decided at aggregation from each run's stored traces (science.md, section 3):
# over the last TAIL_FRACTION of the FID evaluations a run is
#   low:    tail-mean FID <= LOW_FACTOR x the best tail-mean FID of any run of the study
#           (same budget), and
#   stable: relative spread (std / mean) of those FIDs <= MAX_SPREAD, and
#   sane:   every loss is finite and the tail |d_loss| is at most DIVERGE_FACTOR x its
#           median over the first half of training (no divergence).
# A point (generator capacity, discriminator width) is optimal when most of its seeds are.
TAIL_FRACTION = 0.3
LOW_FACTOR = 1.5
MAX_SPREAD = 0.2
DIVERGE_FACTOR = 10.0


def capacity_run(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """One GAN training of the capacity study (a run of the study runner): stores the FID
    and loss traces; the optimality verdict is made later, across runs."""
    cfg_d = {k: v for k, v in config.items() if k not in ("cache",)}
    cfg = QGANConfig(**{**cfg_d, "seed": seed})
    # the driver prepared the shared pieces: runs need only latents, never images
    shared = Shared.from_cache(config.get("cache") or "", latent=cfg.latent, dataset=cfg.dataset)
    if shared is None:
        from qbm.data import load_dataset

        shared = Shared(
            load_dataset(cfg.dataset, cfg.data_dir),
            cfg.latent,
            seed=0,
            ae_epochs=cfg.ae_epochs,
            clf_epochs=cfg.clf_epochs,
            eval_samples=cfg.eval_samples,
            cache=config.get("cache"),
        )
    r = train_qgan(cfg, shared, progress=False)
    return {
        "generator_params": r["generator_params"],
        "discriminator_params": r["discriminator_params"],
        "initial_fid": r["initial_fid"],
        "fid_floor": r["fid_floor_real_vs_real"],
        "fid": r["history"]["fid"],
        "d_loss": r["history"]["d_loss"],
        "g_loss": r["history"]["g_loss"],
        "final_fid": r["final_fid"],
        "seconds": r["seconds"],
    }


def _tail(v: list[float]) -> np.ndarray:
    k = max(2, int(math.ceil(TAIL_FRACTION * len(v))))
    return np.asarray(v[-k:], dtype=float)


def run_verdicts(results: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], float]:
    """Per-run optimality (see the constants above); returns verdicts and the best
    tail-mean FID of the study."""
    tails = [float(_tail(r["fid"]).mean()) if len(r["fid"]) >= 2 else math.inf for r in results]
    best = min(tails) if tails else math.inf
    out = []
    for r, tm in zip(results, tails):
        f = _tail(r["fid"]) if len(r["fid"]) >= 2 else np.array([math.inf])
        spread = float(f.std() / f.mean()) if f.mean() > 0 and np.isfinite(f.mean()) else math.inf
        losses = np.asarray(r["d_loss"] + r["g_loss"], dtype=float)
        d = np.abs(np.asarray(r["d_loss"], dtype=float))
        early = float(np.median(d[: max(1, len(d) // 2)])) if len(d) else 0.0
        diverged = bool(
            not np.all(np.isfinite(losses)) or (len(d) and _tail(list(d)).max() > DIVERGE_FACTOR * max(early, 1e-3))
        )
        low = bool(tm <= LOW_FACTOR * best)
        stable = bool(spread <= MAX_SPREAD)
        out.append(
            {"tail_mean_fid": tm, "tail_rel_spread": spread, "low": low, "stable": stable, "diverged": diverged,
             "optimal": low and stable and not diverged}
        )  # fmt: skip
    return out, best


def fit_scaling(x: np.ndarray, y: np.ndarray) -> dict[str, dict[str, Any]]:
    """Least-squares fits of ln y against x (exponential, y = e^a e^(b x)) and against ln x
    (power law, y = e^a x^b), with 95% t intervals on a and b, R^2 in ln y, and AICc (small
    sample corrected, k = 3 counting the noise variance) with Akaike weights for the
    comparison. AICc needs at least 5 points; with fewer it is NaN and no model is preferred."""
    from scipy import stats

    x = np.asarray(x, dtype=float)
    ly = np.log(np.asarray(y, dtype=float))
    n = len(x)
    out: dict[str, dict[str, Any]] = {}
    if n < 2:
        return out
    for name, feat in (("exponential", x), ("polynomial", np.log(x))):
        A = np.stack([np.ones(n), feat], axis=1)
        coef, *_ = np.linalg.lstsq(A, ly, rcond=None)
        resid = ly - A @ coef
        rss = float(resid @ resid)
        ss = float(((ly - ly.mean()) ** 2).sum())
        fit: dict[str, Any] = {"a": float(coef[0]), "b": float(coef[1]), "r2": 1 - rss / ss if ss > 0 else float("nan")}
        if n > 2:
            s2 = rss / (n - 2)
            cov = s2 * np.linalg.inv(A.T @ A)
            h = stats.t.ppf(0.975, n - 2)
            fit["a_ci"] = [float(coef[0] - h * np.sqrt(cov[0, 0])), float(coef[0] + h * np.sqrt(cov[0, 0]))]
            fit["b_ci"] = [float(coef[1] - h * np.sqrt(cov[1, 1])), float(coef[1] + h * np.sqrt(cov[1, 1]))]
        k = 3
        if n - k - 1 > 0 and rss > 0:
            fit["aicc"] = n * math.log(rss / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)
        else:
            fit["aicc"] = float("nan")
        fit["points"] = n
        out[name] = fit
    a1, a2 = out["exponential"]["aicc"], out["polynomial"]["aicc"]
    if math.isfinite(a1) and math.isfinite(a2):
        m = min(a1, a2)
        w1, w2 = math.exp(-(a1 - m) / 2), math.exp(-(a2 - m) / 2)
        out["exponential"]["akaike_weight"] = w1 / (w1 + w2)
        out["polynomial"]["akaike_weight"] = w2 / (w1 + w2)
    return out


def capacity_configs(
    base: QGANConfig, quantum_grid: list[tuple[int, int]], classical_widths: list[int], disc_widths: list[int]
) -> list[dict[str, Any]]:
    jobs = []
    for n, L in quantum_grid:
        for w in disc_widths:
            c = {**asdict(base), "generator": "quantum", "qubits": n, "layers": L, "latent": n, "readout": "z"}
            jobs.append({**c, "disc_width": w})
    for gw in classical_widths:
        for w in disc_widths:
            jobs.append({**asdict(base), "generator": "classical", "gen_width": gw, "disc_width": w})
    for j in jobs:
        j.pop("seed", None)
        j.pop("extra", None)
    return jobs


def capacity_study(
    base: QGANConfig,
    *,
    quantum_grid: list[tuple[int, int]],
    classical_widths: list[int],
    disc_widths: list[int],
    seeds: list[int],
    out: str,
    runner_kw: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """For each generator capacity, the smallest discriminator width (from ``disc_widths``)
    at which training is optimal (decided over ``seeds``), and fits of discriminator
    against generator capacity. Runs go through the study runner (resumable, local pool
    or Ray)."""
    from qbm.data import load_dataset
    from qbm.studies.runner import Study, grid, run_study, summarise, write_csv

    os.makedirs(out, exist_ok=True)
    jobs = capacity_configs(base, quantum_grid, classical_widths, disc_widths)
    for j in jobs:  # the shared autoencoder / FID classifier, trained once per latent size
        j["cache"] = os.path.join(os.path.abspath(out), f"shared-latent{j['latent']}.pt")
    for latent in sorted({j["latent"] for j in jobs}):
        j = next(j for j in jobs if j["latent"] == latent)
        Shared(
            load_dataset(j["dataset"], j["data_dir"]),
            latent,
            seed=0,
            ae_epochs=j["ae_epochs"],
            clf_epochs=j["clf_epochs"],
            eval_samples=j["eval_samples"],
            cache=j["cache"],
        )
    study = Study("capacity", "qbm.training.qgan:capacity_run", grid(jobs, seeds))
    recs = run_study(study, out, **(runner_kw or {}))
    ok = [r for r in recs if r["status"] == "ok"]
    verdicts, best_fid = run_verdicts([r["result"] for r in ok])
    rows = []
    for r, v in zip(ok, verdicts):
        c = r["config"]
        rows.append(
            {
                "generator": c["generator"],
                "qubits": c["qubits"] if c["generator"] == "quantum" else None,
                "layers": c["layers"] if c["generator"] == "quantum" else None,
                "gen_width": c["gen_width"] if c["generator"] == "classical" else None,
                "disc_width": c["disc_width"],
                "seed": r["seed"],
                "generator_params": r["result"]["generator_params"],
                "discriminator_params": r["result"]["discriminator_params"],
                "final_fid": r["result"]["final_fid"],
                **v,
            }
        )
    write_csv(os.path.join(out, "runs.csv"), rows)
    gkey = lambda r: (r["generator"], r["qubits"] or 0, r["layers"] or 0, r["gen_width"] or 0)  # noqa: E731
    points = []
    for key in sorted({gkey(r) for r in rows}):
        for w in sorted({r["disc_width"] for r in rows if gkey(r) == key}):
            sel = [r for r in rows if gkey(r) == key and r["disc_width"] == w]
            fid = summarise([r["tail_mean_fid"] for r in sel], (0.0, None))
            points.append(
                {
                    "generator": key[0],
                    "qubits": key[1] or None,
                    "layers": key[2] or None,
                    "gen_width": key[3] or None,
                    "disc_width": w,
                    "generator_params": sel[0]["generator_params"],
                    "discriminator_params": sel[0]["discriminator_params"],
                    "seeds": len(sel),
                    "optimal_seeds": sum(r["optimal"] for r in sel),
                    "optimal": sum(r["optimal"] for r in sel) > len(sel) / 2,
                    "tail_fid_mean": fid["mean"],
                    "tail_fid_ci_lo": fid["ci_lo"],
                    "tail_fid_ci_hi": fid["ci_hi"],
                }
            )
    write_csv(os.path.join(out, "points.csv"), points)
    best = []
    for key in sorted({(p["generator"], p["qubits"], p["layers"], p["gen_width"]) for p in points}, key=str):
        sel = sorted([p for p in points if (p["generator"], p["qubits"], p["layers"], p["gen_width"]) == key],
                     key=lambda p: p["disc_width"])  # fmt: skip
        opt = [p for p in sel if p["optimal"]]
        best.append(
            {
                "generator": key[0],
                "qubits": key[1],
                "layers": key[2],
                "gen_width": key[3],
                "generator_params": sel[0]["generator_params"],
                "optimal_disc_width": opt[0]["disc_width"] if opt else None,
                "optimal_disc_params": opt[0]["discriminator_params"] if opt else None,
            }
        )
    write_csv(os.path.join(out, "capacity.csv"), best)
    fits: dict[str, Any] = {}
    from qbm.plotting import _plt

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for kind, colour in (("quantum", "C0"), ("classical", "C1")):
        pts = [
            (b["generator_params"], b["optimal_disc_params"])
            for b in best
            if b["generator"] == kind and b["optimal_disc_params"]
        ]
        if not pts:
            continue
        x, y = np.array(pts, dtype=float).T
        ax.scatter(x, y, color=colour, label=f"{kind} generator")
        f = fit_scaling(x, y)
        fits[kind] = f
        if f:
            xs = np.linspace(x.min(), x.max(), 50)
            e, pl = f["exponential"], f["polynomial"]
            ax.plot(xs, np.exp(e["a"] + e["b"] * xs), "--", color=colour, label=f"{kind}: exponential R2={e['r2']:.2f}")
            ax.plot(xs, np.exp(pl["a"]) * xs ** pl["b"], ":", color=colour, label=f"{kind}: power R2={pl['r2']:.2f}")
    ax.set_yscale("log")
    ax.set_xlabel("generator parameters")
    ax.set_ylabel("smallest optimal discriminator parameters")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    else:
        ax.set_title("no generator capacity trained optimally with the widths tried")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "capacity.png"), dpi=120)
    plt.close(fig)
    criteria = {
        "tail_fraction": TAIL_FRACTION,
        "low_factor_vs_best_tail_fid": LOW_FACTOR,
        "best_tail_fid": best_fid,
        "max_rel_spread": MAX_SPREAD,
        "diverge_factor": DIVERGE_FACTOR,
        "point_optimal": "majority of seeds",
        "seeds": seeds,
    }
    with open(os.path.join(out, "fits.json"), "w") as fh:
        json.dump({"fits": fits, "criteria": criteria}, fh, indent=1)
    return {"rows": rows, "points": points, "best": best, "fits": fits, "criteria": criteria,
            "failed": len(recs) - len(ok)}  # fmt: skip
