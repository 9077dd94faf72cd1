"""Training latent GANs (quantum style-based or classical generator), FID, stability, and
the capacity-scaling study."""

from __future__ import annotations

import csv
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
class Shared:
    """Frozen autoencoder, FID classifier, encoded training latents and real features."""

    def __init__(
        self,
        data: ImageData,
        latent: int,
        *,
        seed: int = 0,
        ae_epochs: int = 80,
        clf_epochs: int = 30,
        eval_samples: int = 500,
        cache: str | None = None,
        progress: bool = False,
    ) -> None:
        self.data, self.latent = data, latent
        torch.manual_seed(seed)
        self.ae = LatentAutoencoder(data.shape, latent)
        self.clf = FeatureClassifier(data.shape, data.num_classes)
        loaded = False
        if cache and os.path.exists(cache):
            try:
                ck = load_file(cache)
            except ValueError:  # a stale or corrupt cache is rebuilt
                ck = {}
            if ck.get("latent") == latent and ck.get("dataset") == data.name:
                self.ae.load_state_dict(ck["ae"])
                self.clf.load_state_dict(ck["clf"])
                self.ae_report, self.clf_accuracy = ck["ae_report"], ck["clf_accuracy"]
                loaded = True
        if not loaded:
            self.ae_report = self._train_ae(ae_epochs, seed, progress)
            self.clf_accuracy = self._train_clf(clf_epochs, seed, progress)
            if cache:
                save_atomic(
                    {
                        "latent": latent,
                        "dataset": data.name,
                        "ae": self.ae.state_dict(),
                        "clf": self.clf.state_dict(),
                        "ae_report": self.ae_report,
                        "clf_accuracy": self.clf_accuracy,
                    },
                    cache,
                )
        self.ae.eval()
        self.clf.eval()
        for p in list(self.ae.parameters()) + list(self.clf.parameters()):
            p.requires_grad_(False)
        with torch.no_grad():
            self.z_train = self.ae.encode(torch.as_tensor(data.x_train))
            self.real_feats = self.features(torch.as_tensor(data.x_test))
            n = min(eval_samples, len(data.x_train))
            idx = np.random.default_rng(seed).choice(len(data.x_train), n, replace=False)
            self.fid_floor = fid_from_features(self.features(torch.as_tensor(data.x_train[idx])), self.real_feats)
            recon = self.ae(torch.as_tensor(data.x_test))
            self.ae_report["fid_reconstructions"] = fid_from_features(self.features(recon), self.real_feats)

    def _train_ae(self, epochs: int, seed: int, progress: bool) -> dict[str, float]:
        g = torch.Generator().manual_seed(seed)
        x = torch.as_tensor(self.data.x_train)
        opt = torch.optim.Adam(self.ae.parameters(), lr=2e-3)
        for _ in tqdm(range(epochs), desc="autoencoder", disable=not progress):
            perm = torch.randperm(len(x), generator=g)
            for s in range(0, len(x), 64):
                xb = x[perm[s : s + 64]]
                loss = self.ae.loss(xb)
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            xt = torch.as_tensor(self.data.x_test)
            mse = float(F.mse_loss(self.ae(xt), xt))
        return {"test_mse": mse, "epochs": epochs}

    def _train_clf(self, epochs: int, seed: int, progress: bool) -> float:
        g = torch.Generator().manual_seed(seed + 1)
        x, y = torch.as_tensor(self.data.x_train), torch.as_tensor(self.data.y_train)
        opt = torch.optim.Adam(self.clf.parameters(), lr=2e-3)
        for _ in tqdm(range(epochs), desc="FID classifier", disable=not progress):
            perm = torch.randperm(len(x), generator=g)
            for s in range(0, len(x), 64):
                b = perm[s : s + 64]
                loss = F.cross_entropy(self.clf(x[b]), y[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            pred = self.clf(torch.as_tensor(self.data.x_test)).argmax(1).numpy()
        return float(np.mean(pred == self.data.y_test))

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
                fake = gen(gen.sample_noise(b, g)).detach()
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
def _run_one(args: tuple[dict[str, Any], str | None, str]) -> dict[str, Any]:
    cfg_d, data_dir, cache = args
    torch.set_num_threads(1)
    os.environ.setdefault("QBM_NUM_THREADS", "1")
    cfg = QGANConfig(**cfg_d)
    from qbm.data import load_dataset

    data = load_dataset(cfg.dataset, data_dir)
    shared = Shared(
        data,
        cfg.latent,
        seed=cfg.seed,
        ae_epochs=cfg.ae_epochs,
        clf_epochs=cfg.clf_epochs,
        eval_samples=cfg.eval_samples,
        cache=cache,
    )
    r = train_qgan(cfg, shared, progress=False)
    return {
        "generator": cfg.generator,
        "qubits": cfg.qubits,
        "layers": cfg.layers,
        "gen_width": cfg.gen_width,
        "disc_width": cfg.disc_width,
        "generator_params": r["generator_params"],
        "discriminator_params": r["discriminator_params"],
        "final_fid": r["final_fid"],
        "optimal": r["verdict"]["optimal"],
        "tail_rel_spread": r["verdict"].get("tail_rel_spread"),
    }


def fit_scaling(x: np.ndarray, y: np.ndarray) -> dict[str, dict[str, float]]:
    """Fits of y against x: exponential (ln y = a + b x) and polynomial (ln y = a + b ln x),
    with R^2 in ln y."""
    ly = np.log(y)

    def r2(pred: np.ndarray) -> float:
        ss = ((ly - ly.mean()) ** 2).sum()
        return float(1 - ((ly - pred) ** 2).sum() / ss) if ss > 0 else float("nan")

    out = {}
    if len(x) >= 2:
        b, a = np.polyfit(x, ly, 1)
        out["exponential"] = {"a": float(a), "b": float(b), "r2": r2(a + b * x)}
        b2, a2 = np.polyfit(np.log(x), ly, 1)
        out["polynomial"] = {"a": float(a2), "b": float(b2), "r2": r2(a2 + b2 * np.log(x))}
    return out


def capacity_study(
    base: QGANConfig,
    *,
    quantum_grid: list[tuple[int, int]],
    classical_widths: list[int],
    disc_widths: list[int],
    out: str,
    workers: int | None = None,
) -> dict[str, Any]:
    """For each generator capacity, the smallest discriminator width (from ``disc_widths``)
    whose run is "optimal". Runs are independent processes."""
    from concurrent.futures import ProcessPoolExecutor

    os.makedirs(out, exist_ok=True)
    jobs = []
    for n, L in quantum_grid:
        for w in disc_widths:
            jobs.append(
                asdict(
                    QGANConfig(
                        **{
                            **asdict(base),
                            "generator": "quantum",
                            "qubits": n,
                            "layers": L,
                            "latent": n,
                            "readout": "z",
                            "disc_width": w,
                        }
                    )
                )
            )
    for gw in classical_widths:
        for w in disc_widths:
            jobs.append(
                asdict(QGANConfig(**{**asdict(base), "generator": "classical", "gen_width": gw, "disc_width": w}))
            )
    caches = {}
    for j in jobs:  # train the shared autoencoders once per latent size, before forking
        key = j["latent"]
        if key not in caches:
            caches[key] = os.path.join(out, f"shared-latent{key}.pt")
            from qbm.data import load_dataset

            Shared(
                load_dataset(j["dataset"], j["data_dir"]),
                key,
                seed=j["seed"],
                ae_epochs=j["ae_epochs"],
                clf_epochs=j["clf_epochs"],
                eval_samples=j["eval_samples"],
                cache=caches[key],
            )
    rows = []
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as ex:
        futs = [ex.submit(_run_one, (j, j["data_dir"], caches[j["latent"]])) for j in jobs]
        for f in tqdm(futs, desc="capacity study runs"):
            rows.append(f.result())
    with open(os.path.join(out, "runs.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    best = []
    for key in sorted({(r["generator"], r["qubits"], r["layers"], r["gen_width"]) for r in rows}):
        sel = sorted(
            [r for r in rows if (r["generator"], r["qubits"], r["layers"], r["gen_width"]) == key],
            key=lambda r: r["disc_width"],
        )
        opt = [r for r in sel if r["optimal"]]
        best.append(
            {
                "generator": key[0],
                "qubits": key[1] if key[0] == "quantum" else None,
                "layers": key[2] if key[0] == "quantum" else None,
                "gen_width": key[3] if key[0] == "classical" else None,
                "generator_params": sel[0]["generator_params"],
                "optimal_disc_width": opt[0]["disc_width"] if opt else None,
                "optimal_disc_params": opt[0]["discriminator_params"] if opt else None,
            }
        )
    with open(os.path.join(out, "capacity.csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(best[0]))
        w.writeheader()
        w.writerows(best)
    fits = {}
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
            ax.plot(
                xs,
                np.exp(f["exponential"]["a"] + f["exponential"]["b"] * xs),
                "--",
                color=colour,
                label=f"{kind}: exponential fit R2={f['exponential']['r2']:.2f}",
            )
            ax.plot(
                xs,
                np.exp(f["polynomial"]["a"]) * xs ** f["polynomial"]["b"],
                ":",
                color=colour,
                label=f"{kind}: power fit R2={f['polynomial']['r2']:.2f}",
            )
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
    with open(os.path.join(out, "fits.json"), "w") as fh:
        json.dump(fits, fh, indent=1)
    return {"rows": rows, "best": best, "fits": fits}
