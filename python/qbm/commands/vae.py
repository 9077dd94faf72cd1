"""`qbm train vae`, `qbm generate`, `qbm compare vae`."""

from __future__ import annotations

from qbm.cli_types import (
    nonneg_float,
    nonneg_int,
    positive_float,
    positive_int,
    seed_int,
    threads_int,
    unit_float,
    positive_ratio,
)

import argparse
import math
import os
from typing import Any

import numpy as np

from qbm import registry as negative
from qbm.commands.data import add_download_flag, resolve_download
from qbm.plotting import save_curves, save_image_grid

LAMBDAS = [0.0, 0.5, 1.0, 2.0, 4.0, 8.0]

from qbm.registry import ANNEALER_NAMES  # noqa: E402  (generation anneals)


def _qpu_from_args(args: argparse.Namespace) -> Any:
    if getattr(args, "sampler", None) != "qpu":
        return None
    from qbm.qpu import Advantage2Sampler, parse_mock

    child = parse_mock(args.mock) if args.mock else None
    return Advantage2Sampler(child, mode="dqa", cache_dir=os.path.join(args.out, "embeddings"))


def make_trainer(args: argparse.Namespace, data: Any) -> Any:
    from qbm.training.vae import check_device

    check_device(args.device)  # before any directory is made
    created = not os.path.exists(args.out)
    try:
        return _make_trainer(args, data)
    except BaseException:  # a refused or failed set-up leaves no empty run directory behind
        if created and os.path.isdir(args.out) and not os.listdir(args.out):
            os.rmdir(args.out)
        raise


def _make_trainer(args: argparse.Namespace, data: Any) -> Any:
    from qbm.models.vae import BMVAE, GaussianVAE
    from qbm.training.vae import VAETrainer

    from qbm.training import rundir
    from qbm.checkpoint import load_checkpoint

    ck = os.path.join(args.out, "model.pt")
    if rundir.prepare(args.out, "model.pt", resume=args.resume, force=getattr(args, "force", False)):
        stored = load_checkpoint(ck)
        t, cfg = stored["trainer"], stored["config"]
        rundir.conflicts(
            getattr(args, "explicit", set()),
            vars(args),
            {
                "prior": stored["kind"],
                "sampler": t["sampler"],
                "latent": cfg.get("latent"),
                "graph": cfg.get("graph"),
                "arch": cfg.get("arch"),
                "likelihood": cfg.get("likelihood"),
                "relaxation": cfg.get("relaxation"),
                "chains": t["num_chains"],
                "sweeps": t["sweeps"],
                "lr": t["lr"],
                "batch_size": t["batch_size"],
                "seed": t["seed"],
                "kl_warmup": t.get("kl_warmup"),
                "kl_start": t.get("kl_start", 0.0),
                "gumbel_tau": cfg.get("tau") if stored["kind"] == "bm" else None,
                "dataset": t.get("dataset"),
                "iw_samples": t.get("iw_samples", 50),
                "holdout": t.get("holdout", []),
                "binarize": t.get("binarize", "none"),
            },
        )
        qpu = _qpu_from_args(argparse.Namespace(**{**vars(args), "sampler": t["sampler"]}))
        tr = VAETrainer.from_checkpoint(ck, data, num_threads=args.threads, qpu=qpu, device=args.device)
        print(f"resuming from {ck} at epoch {tr.epoch}")
        return tr
    qpu = _qpu_from_args(args)
    if args.prior == "bm":
        model = BMVAE(
            data.shape,
            args.latent,
            graph=args.graph,
            arch=args.arch,
            likelihood=args.likelihood,
            relaxation=args.relaxation,
            tau=args.gumbel_tau,
            seed=args.seed,
        )
    else:
        model = GaussianVAE(data.shape, args.latent, arch=args.arch, likelihood=args.likelihood, seed=args.seed)
    return VAETrainer(
        model,
        data,
        sampler=args.sampler,
        num_chains=args.chains,
        sweeps=args.sweeps,
        lr=args.lr,
        batch_size=args.batch_size,
        seed=args.seed,
        num_threads=args.threads,
        qpu=qpu,
        kl_warmup=args.kl_warmup,
        kl_start=args.kl_start,
        iw_samples=getattr(args, "iw_samples", 50),
        device=args.device,
        holdout=args.holdout or (),
        binarize=args.binarize,
        negative_options=negative_options(args),
    )


def negative_options(args: argparse.Namespace) -> dict[str, Any]:
    """Options of the negative phase beyond sweeps: ``--anneal-ns`` for the exact-DQA one."""
    t = getattr(args, "anneal_ns", None)
    if t is None:
        return {}
    samplers = getattr(args, "samplers", None) or [getattr(args, "sampler", None)]
    if "schrodinger" not in samplers:
        raise ValueError(f"--anneal-ns: only the schrodinger sampler anneals in time (got {', '.join(samplers)})")
    return {"anneal_ns": t}


def write_outputs(
    tr: Any, out: str, *, lambdas: list[float], held_out: np.ndarray | None, quiet: bool, anneal_sweeps: int = 1000
) -> dict[str, Any]:
    import torch

    from qbm.models.vae import BMVAE
    from qbm.training.vae import ood_auroc

    extra: dict[str, Any] = {}
    x = torch.as_tensor(tr.data.rows("test", slice(0, 16))).to(tr.device)
    rec = tr.model.reconstruct(x).cpu().numpy()
    pairs = np.concatenate([tr.data.rows("test", slice(0, 16)), rec]).transpose(0, 2, 3, 1)
    save_image_grid(os.path.join(out, "reconstructions.png"), pairs, rows=2, title="test images (top), reconstructions")
    hist = tr.history
    save_curves(
        os.path.join(out, "curves.png"),
        {
            "train recon": [h["train_recon"] for h in hist],
            "test recon (sampled z)": [h["test_recon"] for h in hist],
            "test recon (at mode)": [h.get("test_recon_at_mode", float("nan")) for h in hist],
            "-test ELBO": [-h["test_elbo"] for h in hist],
            "-test IW log-lik": [
                -h["test_iw_loglik"] if h.get("test_iw_loglik") is not None else float("nan") for h in hist
            ],
            "test KL (rate)": [h["test_kl"] for h in hist],
        },
        xlabel="epoch",
        ylabel="nats per image",
        title=f"{tr.data.name}: {'BM-VAE/' + tr.sampler_name if tr.is_bm else 'Gaussian VAE'}",
    )
    from qbm import generation as G

    say = (lambda m: None) if quiet else (lambda m: print(f"generation: {m}", flush=True))
    say("judge classifier (cached per data set)")
    judge = G.Judge(tr.data, progress=not quiet)
    if isinstance(tr.model, BMVAE):
        gen = G.evaluate_bm(tr.model, tr.data, judge, seed=tr.seed, num_sweeps=anneal_sweeps, progress=say)
        imgs = gen.pop("_images")
        dirs = gen.pop("_directions")
        fields = gen.pop("_fields")
        save_image_grid(
            os.path.join(out, "samples.png"),
            imgs["qa"][:64].transpose(0, 2, 3, 1),
            title=f"QA mode: annealed to final beta {gen['qa']['beta']:g} (chosen on validation data)",
        )
        save_image_grid(
            os.path.join(out, "prior.png"),
            imgs["prior"][:64].transpose(0, 2, 3, 1),
            title="prior mode: Gibbs at the model's temperature (beta = 1)",
        )
        per = gen["cqa"]["per_label"]
        grid = np.concatenate([im[:8] for im in imgs["cqa"]]).transpose(0, 2, 3, 1)
        save_image_grid(
            os.path.join(out, "conditional.png"),
            grid,
            rows=len(imgs["cqa"]),
            title="c-QA mode: tilted prior at beta = 1 (per label learned fields x s or lambda x direction, by "
            "validation)",
            row_labels=[
                f"{r['label']}: "
                + (f"fields x{r['field_scale']:g}" if r["method"] == "fields" else f"lam {r['lambda']:g}")
                + f", acc {r['accuracy']:.2f}"
                for r in per
            ],
        )
        extra["generation"] = gen
        extra["generation_choice"] = {
            "qa_beta": gen["qa"]["beta"],
            "lambda": gen["cqa"]["lambda"],
            "directions": np.asarray(dirs).tolist(),
            "fields": np.asarray(fields).tolist(),
            "cqa_method": gen["cqa"]["method"],
            "field_scale": gen["cqa"]["field_scale"],
            "failed": gen["cqa"]["failed"],
        }
    else:
        gen = G.evaluate_gaussian(tr.model, tr.data, judge, seed=tr.seed, progress=say)
        imgs = G.gaussian_images(tr.model, 64, seed=tr.seed).transpose(0, 2, 3, 1)
        save_image_grid(os.path.join(out, "samples.png"), imgs, title="samples from N(0, I)")
        extra["generation"] = gen
        extra["generation_choice"] = {"tau": gen["qa"]["tau"]}
    if held_out is not None and len(held_out):
        extra["ood"] = ood_auroc(tr, tr.data.rows("test"), held_out)
        if not quiet:
            print(
                f"OOD AUROC (held-out classes): prior energy {extra['ood']['auroc_prior_energy']:.3f}, "
                f"-ELBO {extra['ood']['auroc_neg_elbo']:.3f}"
            )
    if not quiet:
        for line in G.summary_lines(extra["generation"]):
            print("  " + line)
    return extra


def precheck_train_vae(args: argparse.Namespace) -> None:
    """Checks that need no torch, run before it is imported: the run directory and the data."""
    from qbm.data import check_dataset
    from qbm.training.rundir import precheck

    negative_options(args)  # a contradictory flag is refused before torch loads
    precheck(args.out, "model.pt", resume=args.resume, force=getattr(args, "force", False))
    resolve_download(args)
    check_dataset(args.dataset, args.data_dir)


def precheck_compare_vae(args: argparse.Namespace) -> None:
    from qbm.data import check_dataset

    negative_options(args)
    resolve_download(args)
    check_dataset(args.dataset, args.data_dir)
    if args.holdout:
        from qbm.data import load_dataset

        try:
            load_dataset(args.dataset, args.data_dir).without_classes(sorted(set(args.holdout)))
        except ValueError as e:
            raise ValueError(f"--{e}") from None


def precheck_generate(args: argparse.Namespace) -> None:
    if not os.path.isfile(args.model):
        raise FileNotFoundError(f"--model: checkpoint {args.model!r} does not exist")
    check_generate_outputs(args.out)


def cmd_train_vae(args: argparse.Namespace) -> int:
    from qbm.data import load_dataset

    from qbm.training.rundir import check_out_dir

    check_out_dir(args.out)
    if args.holdout:
        args.holdout = sorted(set(args.holdout))
    data = load_dataset(args.dataset, args.data_dir)  # checks the data before any directory is made
    ck = os.path.join(args.out, "model.pt")
    if args.resume and "holdout" not in getattr(args, "explicit", set()) and os.path.exists(ck):
        from qbm.checkpoint import load_checkpoint

        # the held-out classes change the training data: a resume keeps the run's own
        args.holdout = load_checkpoint(ck)["trainer"].get("holdout") or None
    held = None
    if args.holdout:
        try:
            data, held = data.without_classes(args.holdout)
        except ValueError as e:
            raise ValueError(f"--{e}") from None
    tr = make_trainer(args, data)
    mpath = os.path.join(args.out, "metrics.json")
    desc = f"BM-VAE ({tr.sampler_name} negative phase)" if tr.is_bm else "Gaussian VAE"
    print(
        f"training {desc} on {data.name}: {len(data.x_train)} train / {len(data.x_test)} test images, "
        f"latent {args.latent}, {args.epochs} epochs -> {args.out}"
    )
    tr.train(args.epochs, progress=not args.quiet, checkpoint=ck, metrics_path=mpath)
    extra = write_outputs(
        tr, args.out, lambdas=LAMBDAS, held_out=held, quiet=args.quiet, anneal_sweeps=args.anneal_sweeps
    )
    # the generation settings chosen on validation data travel with the model
    from qbm.checkpoint import load_checkpoint, save_atomic

    ckd = load_checkpoint(ck)
    ckd["generation"] = extra.get("generation_choice")
    save_atomic(ckd, ck)
    if not args.quiet:
        n_final = len(tr.x_test) if args.final_images is None else min(args.final_images, len(tr.x_test))
        print(f"final evaluation: IW log-likelihood of {n_final} test images at K={args.iw_final} ...", flush=True)
    final = tr.final_evaluation(args.iw_final, args.final_images)
    extra["final"] = final
    tr.write_metrics(mpath, extra)
    iw = final["iw_loglik"]
    print(
        f"final (test): IW log-likelihood {'n/a' if iw is None else f'{iw:.3f}'} (K={args.iw_final}), "
        f"ELBO {final['elbo']:.3f}, reconstruction {final['recon_sampled']:.3f} (sampled z) / "
        f"{final['recon_at_mode']:.3f} (at the {final['mode']}), KL {final['kl']:.3f}, "
        f"{final['active_units']} active units; {tr.wall:.1f} s training; evaluation of {final['images']} of "
        f"{final['of_images']} test images {final['seconds']:.1f} s, peak memory {final['peak_rss_mb']:.0f} MB"
    )
    if final.get("iw_by_k") and len(final["iw_by_k"]) > 1:
        print("IW log-likelihood by K (the first K of the same draws): "
              + ", ".join(f"K = {k}: {v:.3f}" for k, v in final["iw_by_k"].items()))  # fmt: skip
    if "log_z_method" in final:
        print(f"log Z: {final['log_z_method']}" + (f"; {final['iw_note']}" if "iw_note" in final else ""))
    print(
        f"wrote {ck}, metrics.json, reconstructions.png, samples.png, curves.png"
        + (", prior.png, conditional.png" if tr.is_bm else "")
    )
    return 0


def check_generate_outputs(out: str) -> str:
    """``qbm generate --out X.png`` writes X.png, X.npy and X.json: refuse (before any
    work) when X.json or X.npy exists and X.json is not an earlier ``qbm generate``
    record (``--out RUN/metrics.png`` would replace a run's metrics.json), or when the
    directory cannot take them. Returns the stem X."""
    import json

    if not out.lower().endswith(".png"):
        raise ValueError(f"--out: expected a .png path, got {out!r}")
    stem = os.path.splitext(out)[0]
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"--out: directory {parent!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"--out: cannot write in {parent!r}")
    ours = False
    if os.path.exists(stem + ".json"):
        try:
            with open(stem + ".json") as fh:
                rec = json.load(fh)
            ours = isinstance(rec, dict) and {"mode", "num", "model"} <= set(rec)
        except (OSError, ValueError):
            ours = False
    for path in (stem + ".json", stem + ".npy"):
        if os.path.exists(path) and not ours:
            raise ValueError(
                f"--out: {out!r} would overwrite {path!r}, which qbm generate did not write; choose another --out"
            )
    return stem


def check_generate_memory(num: int, config: dict[str, Any]) -> None:
    """Refuse, before sampling, ``--num`` images whose arrays cannot fit: spins, decoder
    logits and images in float64 plus the float32 copy written to disk (about 28 bytes per
    pixel and latent) against the memory the machine still has."""
    from qbm import _core

    pixels = int(np.prod(config["shape"]))
    need = num * (28 * pixels + 16 * int(config["latent"]))
    avail = _core.available_memory()  # what the core's own checks use (MemAvailable, ulimit -v, cgroup)
    if avail is not None and need > avail:
        raise ValueError(
            f"--num: {num} images need about {need / 2**30:.1f} GiB while generating, but this machine has "
            f"{avail / 2**30:.1f} GiB available; ask for fewer images"
        )


def cmd_generate(args: argparse.Namespace) -> int:
    import json

    from qbm import generation as G
    from qbm.models.vae import BMVAE
    from qbm.training.vae import load_vae

    stem = check_generate_outputs(args.out)  # before any work: nothing of a run is overwritten
    model, ck = load_vae(args.model)
    check_generate_memory(args.num, ck["config"])
    choice = ck.get("generation") or {}
    info: dict[str, Any] = {"mode": args.mode, "seed": args.seed, "model": args.model, "num": args.num}
    if not isinstance(model, BMVAE):
        if args.mode == "cqa":
            raise ValueError("mode: a Gaussian VAE has no c-QA mode (no energy to tilt); use prior or qa")
        tau = 1.0 if args.mode == "prior" else (args.tau or choice.get("tau") or 1.0)
        info["tau"] = tau
        imgs = G.gaussian_images(model, args.num, tau=tau, seed=args.seed)
        title = f"Gaussian VAE, z ~ N(0, {tau:.2f}^2 I), seed {args.seed}"
    elif args.mode == "prior":
        info["beta"] = 1.0
        imgs = G.decode(model, G.prior_spins(model, args.num, num_sweeps=args.sweeps, seed=args.seed))
        title = f"prior mode (Gibbs, beta = 1), seed {args.seed}"
    elif args.mode == "qa":
        beta = args.beta or choice.get("qa_beta") or 1.5
        info.update(beta_final=beta, anneal=args.anneal, sweeps=args.sweeps)
        imgs = G.decode(
            model,
            G.qa_spins(model, args.num, beta_final=beta, num_sweeps=args.sweeps, seed=args.seed, sampler=args.anneal),
        )
        title = f"QA mode ({args.anneal}, final beta {beta:g}), seed {args.seed}"
    else:
        if args.label is None:
            raise ValueError("--label: --mode cqa needs --label")
        field, how, lam = G.cqa_field(ck, args.label, args.lam, args.model)
        info.update(label=args.label, field=how, beta=1.0)
        if lam is not None:
            info["lambda"] = lam
        imgs = G.decode(model, G.prior_spins(model, args.num, extra_field=field, num_sweeps=args.sweeps,
                                             seed=args.seed))  # fmt: skip
        title = f"c-QA mode, label {args.label}, {how} (tilted prior at beta = 1), seed {args.seed}"
    save_image_grid(args.out, imgs.transpose(0, 2, 3, 1), title=title)
    np.save(stem + ".npy", imgs.astype(np.float32))
    metrics = G.judge_generated(ck, model, imgs, args.mode, args.label, data_dir=args.data_dir, sweeps=args.sweeps,
                              seed=args.seed)  # fmt: skip
    info["metrics"] = metrics
    with open(stem + ".json", "w") as fh:
        json.dump(info, fh, indent=1, default=float)
    print(
        f"wrote {args.out}, {stem}.npy and {stem}.json ({args.num} images)"
        + G.describe_metrics(metrics, args.mode, args.label)
    )
    return 0


def _prepare_judge(args: argparse.Namespace) -> None:
    """Check the data, then build (or load) the data set's judge once in the driver, so
    every run reads the same cached network instead of racing to train it."""
    from qbm import generation as G
    from qbm.data import check_dataset, load_dataset

    check_dataset(args.dataset, args.data_dir)
    G.Judge(load_dataset(args.dataset, args.data_dir))


def cmd_compare_vae(args: argparse.Namespace) -> int:
    import json

    from qbm.studies import cli_common
    from qbm.studies.runner import Study, grid, summarise, write_csv
    from qbm.training.vae import epochs_to_reach

    models = ["gaussian"] + [f"bm/{s}" for s in args.samplers]
    base = {
        "dataset": args.dataset,
        "data_dir": args.data_dir,
        "latent": args.latent,
        "epochs": args.epochs,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "kl_warmup": args.kl_warmup,
        "kl_start": args.kl_start,
        "gumbel_tau": args.gumbel_tau,
        "graph": args.graph,
        "chains": args.chains,
        "sweeps": args.sweeps,
        "iw_samples": args.iw_samples,
        "iw_final": args.iw_final,
        "final_images": args.final_images,
        "binarize": args.binarize,
        "device": args.device,
    }

    if args.holdout:  # only when asked: configs without it keep their hashes
        base["holdout"] = sorted(set(args.holdout))
    # the exact-DQA arm's anneal time joins its own configs only (the others' keep their hashes)
    extra = {"bm/schrodinger": negative_options(args)}
    configs = [{**base, "model": m, **extra.get(m, {})} for m in models]
    study = Study("compare-vae", "qbm.studies.compare:compare_run", grid(configs, args.seeds),
                  preflight=lambda: _prepare_judge(args))  # fmt: skip
    print(
        f"compare vae on {args.dataset}: {', '.join(models)}; latent {args.latent}, {args.epochs} epochs, "
        f"seeds {args.seeds} ({len(study.runs)} runs, engine {args.engine}) -> {args.out}"
    )
    _print_budget(args, configs, study)
    recs = [r for r in cli_common.run(study, args) if r["status"] == "ok"]
    by_model: dict[str, list[dict[str, Any]]] = {m: [] for m in models}
    for r in recs:
        by_model[r["config"]["model"]].append(r["result"])
    target = args.target_elbo
    if target is None and by_model["gaussian"]:
        target = summarise([r["final"]["elbo"] for r in by_model["gaussian"]])["mean"]
    # "faster convergence" as the paper means it: epochs until the per-epoch test reconstruction
    # (the monitor's fixed images) reaches the Gaussian VAE's mean last-epoch value there
    target_recon = None
    if by_model["gaussian"]:
        target_recon = summarise([r["history"][-1]["test_recon_sampled"] for r in by_model["gaussian"]])["mean"]
    # the range each quantity can take (intervals are clipped to it)
    bounds = {"iw_loglik": (None, 0.0), "elbo": (None, 0.0), "recon_sampled": (0.0, None),
              "recon_at_mode": (0.0, None), "rate_kl": (0.0, None), "active_units": (0.0, float(args.latent)),
              "seconds_per_epoch": (0.0, None), "epochs_to_target_elbo": (1.0, float(args.epochs)),
              "epochs_to_target_recon": (1.0, float(args.epochs)), "ood_auroc_prior_energy": (0.0, 1.0),
              "ood_auroc_neg_elbo": (0.0, 1.0)}  # fmt: skip
    for mode in ("prior", "qa"):
        bounds.update({f"{mode}_fid": (0.0, None), f"{mode}_coverage": (0.0, 1.0), f"{mode}_precision": (0.0, 1.0),
                       f"{mode}_recall": (0.0, 1.0), f"{mode}_min_class_fraction": (0.0, 1.0)})  # fmt: skip
    bounds.update({"fid_floor": (0.0, None), "qa_beta": (1.0, None), "cqa_relative_diversity": (0.0, None),
                   "cqa_min_relative_diversity": (0.0, None), "cqa_relative_accuracy": (0.0, None),
                   "cqa_min_relative_accuracy": (0.0, None), "cqa_lambda": (0.0, None),
                   "cqa_fields_labels": (0.0, None), "cqa_labels_on_target": (0.0, None)})  # fmt: skip
    rows = []
    for m in models:
        rs = by_model[m]
        if not rs:
            continue
        row: dict[str, Any] = {"model": m, "seeds": len(rs)}
        metrics = {
            "iw_loglik": [r["final"]["iw_loglik"] for r in rs],
            "elbo": [r["final"]["elbo"] for r in rs],
            "recon_sampled": [r["final"]["recon_sampled"] for r in rs],
            "rate_kl": [r["final"]["kl"] for r in rs],
            "recon_at_mode": [r["final"]["recon_at_mode"] for r in rs],
            "active_units": [r["final"]["active_units"] for r in rs],
            "seconds_per_epoch": [r["seconds_per_epoch"] for r in rs],
        }
        # the IW estimate at each smaller K from the final evaluation's own draws (how far the bound moves with K)
        ladder = [r["final"].get("iw_by_k") or {} for r in rs]
        for k in sorted({int(k) for lad in ladder for k in lad}):
            metrics[f"iw_k{k}"] = [lad[str(k)] for lad in ladder if str(k) in lad]
            bounds[f"iw_k{k}"] = bounds["iw_loglik"]
        for mode in ("prior", "qa"):
            for k in ("fid", "coverage", "min_class_fraction", "precision", "recall"):
                metrics[f"{mode}_{k}"] = [r["generation"][mode][k] for r in rs if "generation" in r]
        metrics["qa_beta"] = [r["generation"]["qa"]["beta"] for r in rs if "generation" in r]
        if m != "gaussian":
            for k in ("relative_accuracy", "min_relative_accuracy", "relative_diversity", "min_relative_diversity"):
                metrics[f"cqa_{k}"] = [r["generation"]["cqa"][k] for r in rs if "generation" in r]
            metrics["cqa_lambda"] = [float(np.mean(r["generation"]["cqa"]["lambda"])) for r in rs if "generation" in r]
            cq = [r["generation"]["cqa"] for r in rs if "generation" in r]
            # labels conditioned by learned fields, and labels meeting every c-QA target
            metrics["cqa_fields_labels"] = [float(sum(m == "fields" for m in c["method"])) for c in cq]
            metrics["cqa_labels_on_target"] = [
                float(len(c["per_label"]) - len(c["targets"]["missed"])) for c in cq if "targets" in c
            ]
            for lab in range(len(cq[0]["per_label"]) if cq else 0):  # the per-label c-QA table
                per = [c["per_label"][lab] for c in cq]
                for k in ("relative_accuracy", "relative_diversity", "relative_diversity_real", "distinct_fraction",
                          "relative_posterior_accuracy"):  # fmt: skip
                    metrics[f"cqa_label{lab}_{k}"] = [p.get(k, float("nan")) for p in per]
                metrics[f"cqa_label{lab}_fields"] = [float(p["method"] == "fields") for p in per]
        metrics["fid_floor"] = [r["generation"]["fid_floor"] for r in rs if "generation" in r]
        if any(r.get("ood") for r in rs):
            for k in ("auroc_prior_energy", "auroc_neg_elbo"):
                metrics[f"ood_{k}"] = [r["ood"][k] for r in rs if r.get("ood")]
        e2t = [epochs_to_reach(r["history"], target, key="test_elbo") if target is not None else None for r in rs]
        metrics["epochs_to_target_elbo"] = [float(e) if e is not None else float("nan") for e in e2t]
        row["reached_target"] = sum(e is not None for e in e2t)
        e2r = [epochs_to_reach(r["history"], target_recon, key="test_recon_sampled") if target_recon is not None
               else None for r in rs]  # fmt: skip
        metrics["epochs_to_target_recon"] = [float(e) if e is not None else float("nan") for e in e2r]
        row["reached_target_recon"] = sum(e is not None for e in e2r)
        row["final_images"] = rs[0]["final"].get("images")
        for k, v in metrics.items():
            s_ = summarise([x for x in v if x is not None], bounds.get(k, _label_bounds(k)))
            row[f"{k}_mean"], row[f"{k}_ci_lo"], row[f"{k}_ci_hi"] = s_["mean"], s_["ci_lo"], s_["ci_hi"]
        row["log_z_method"] = rs[0]["final"].get("log_z_method", "-")
        rows.append(row)
    rows.sort(key=lambda r: -r["iw_loglik_mean"] if r["iw_loglik_mean"] == r["iw_loglik_mean"] else math.inf)
    for i, r in enumerate(rows):
        r["rank"] = i + 1
    write_csv(os.path.join(args.out, "compare.csv"), rows)
    md = _markdown_table(rows, args, target, target_recon)
    with open(os.path.join(args.out, "compare.md"), "w") as fh:
        fh.write(md)
    print(md)
    _band_plot(os.path.join(args.out, "compare.png"), by_model, args)
    with open(os.path.join(args.out, "compare.json"), "w") as fh:
        json.dump({"target_elbo": target, "rows": rows}, fh, indent=1, default=float)
    print(f"wrote {args.out}/compare.csv, compare.md, compare.json, compare.png")
    return 0


def _label_bounds(key: str) -> tuple[float | None, float | None] | None:
    """Ranges of the per-label c-QA quantities (shares in [0, 1], ratios >= 0)."""
    if key.endswith(("distinct_fraction", "_fields")):
        return (0.0, 1.0)
    if key.startswith("cqa_label"):
        return (0.0, None)
    return None


def _print_budget(args: argparse.Namespace, configs: list[dict[str, Any]], study: Any) -> None:
    """The study's cost up front, measured here on a few training steps and IW images of
    each model (at the runs' thread count) and scaled to the runs still to do."""
    from qbm.data import load_dataset
    from qbm.studies.compare import estimate_seconds
    from qbm.studies.runner import default_workers, load_records
    from qbm.threads import apply_policy

    if getattr(args, "engine", "local") != "local" or getattr(args, "quiet", False):
        return
    done = load_records(study, args.out, quiet=True) if os.path.isdir(args.out) else {}
    todo = [r for r in study.runs if done.get(r.key, {}).get("status") != "ok"]
    if not todo:
        return
    data = load_dataset(args.dataset, args.data_dir)
    if args.holdout:
        data, _ = data.without_classes(sorted(set(args.holdout)))
    apply_policy(args.threads_per_run)
    per = {c["model"]: estimate_seconds(c, data) for c in configs}
    core_s = sum(per[r.config["model"]]["total"] for r in todo) * args.threads_per_run
    workers = min(len(todo), args.workers or default_workers(args.threads_per_run))
    wall = sum(per[r.config["model"]]["total"] for r in todo) / workers
    each = ", ".join(f"{m} {p['total'] / 60:.1f} min" for m, p in per.items())
    print(
        f"budget: {len(todo)} runs to do, about {core_s / 3600:.2f} core-hours, {wall / 3600:.2f} h on {workers} "
        f"worker(s) (per run: {each}; measured here on {8} training steps and 4 IW images of each model, "
        "scaled to the epochs and the final evaluation; generation judging comes on top)",
        flush=True,
    )


def _fmt_ci(r: dict[str, Any], k: str, digits: int = 2) -> str:
    m, lo, hi = r[f"{k}_mean"], r[f"{k}_ci_lo"], r[f"{k}_ci_hi"]
    if m != m:
        return "-"
    if lo != lo:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _markdown_table(
    rows: list[dict[str, Any]], args: argparse.Namespace, target: float | None, target_recon: float | None = None
) -> str:
    from qbm.models.evaluation import NOTE

    head = (
        "| rank | model | IW log-lik (K={k}) | ELBO | recon (sampled z) | rate (KL) | recon at mode | active units "
        "| epochs to target ELBO | epochs to target recon | s / epoch |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    ).format(k=args.iw_final)
    lines = []
    for r in rows:
        lines.append(
            f"| {r['rank']} | {r['model']} | {_fmt_ci(r, 'iw_loglik')} | {_fmt_ci(r, 'elbo')} | "
            f"{_fmt_ci(r, 'recon_sampled')} | {_fmt_ci(r, 'rate_kl')} | {_fmt_ci(r, 'recon_at_mode')} | "
            f"{_fmt_ci(r, 'active_units', 1)} | {_fmt_ci(r, 'epochs_to_target_elbo', 1)} "
            f"({r['reached_target']}/{r['seeds']}) | {_fmt_ci(r, 'epochs_to_target_recon', 1)} "
            f"({r['reached_target_recon']}/{r['seeds']}) | {_fmt_ci(r, 'seconds_per_epoch', 3)} |"
        )
    ladder = ""
    for r in rows:
        ks = sorted(int(k[len("iw_k") : -len("_mean")]) for k in r if k.startswith("iw_k") and k.endswith("_mean"))
        if len(ks) > 1:
            ladder += (
                f"\n{r['model']}: IW log-likelihood by K from the final evaluation's draws (the first K of each "
                "image's): " + ", ".join(f"K = {k}: {_fmt_ci(r, f'iw_k{k}')}" for k in ks) + "\n"
            )
    tgt = "-" if target is None else f"{target:.3f}"
    foot = (
        f"\nMean [95% t interval] over seeds {args.seeds}; {args.dataset}, latent {args.latent}, {args.epochs} epochs, "
        f"ranked by IW log-likelihood on {rows[0].get('final_images') if rows else '-'} test images"
        + (
            " (dynamically binarised: a fresh draw per training batch, one fixed test draw per seed)"
            if args.binarize == "dynamic"
            else ""
        )
        + f". Target ELBO {tgt}"
        + (" (the Gaussian VAE's mean final ELBO)" if args.target_elbo is None else "")
        + (
            ""
            if target_recon is None
            else f"; target reconstruction {target_recon:.3f} (the Gaussian VAE's mean "
            "last-epoch test reconstruction on the per-epoch monitor's images)"
        )
        + f". BM log Z: {next((r['log_z_method'] for r in rows if r['model'] != 'gaussian'), '-')}. "
        + (NOTE if args.binarize == "none" else "IW log-likelihood in nats per image, the binarised-MNIST protocol")
        + ".\n"
    )
    gen_head = (
        "\nGeneration (judge: the data set's cached feature classifier; test images, equal counts; FID floor "
        "real vs real {floor}):\n\n| model | mode | FID | coverage | smallest class | precision | recall | "
        "c-QA accuracy / judge's on real | c-QA diversity / prior's own |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    floor = next((_fmt_ci(r, "fid_floor") for r in rows if "fid_floor_mean" in r), "-")
    glines = []
    for r in rows:
        if "prior_fid_mean" not in r:
            continue
        bm = r["model"] != "gaussian"
        for mode in ("prior", "qa"):
            label = ("prior (beta 1)" if bm else "tau 1") if mode == "prior" else f"QA (beta {_fmt_ci(r, 'qa_beta')})"
            if not bm and mode == "qa":
                label = f"cold (tau = beta^-1/2, beta {_fmt_ci(r, 'qa_beta')})"
            glines.append(
                f"| {r['model']} | {label} | {_fmt_ci(r, mode + '_fid')} | {_fmt_ci(r, mode + '_coverage')} | "
                f"{_fmt_ci(r, mode + '_min_class_fraction')} | {_fmt_ci(r, mode + '_precision')} | "
                f"{_fmt_ci(r, mode + '_recall')} | - | - |"
            )
        if bm:
            glines.append(
                f"| {r['model']} | c-QA (learned fields on {_fmt_ci(r, 'cqa_fields_labels', 1)} labels, the logistic "
                f"direction on the rest; every target met on {_fmt_ci(r, 'cqa_labels_on_target', 1)} labels) "
                "| - | - | - | - | - | "
                f"{_fmt_ci(r, 'cqa_relative_accuracy')} (worst label {_fmt_ci(r, 'cqa_min_relative_accuracy')}) | "
                f"{_fmt_ci(r, 'cqa_relative_diversity')} (worst {_fmt_ci(r, 'cqa_min_relative_diversity')}) |"
            )
    gen = gen_head.format(floor=floor) + "\n".join(glines) + "\n" if glines else ""
    for r in rows:
        labels = sorted(int(k[len("cqa_label") :].split("_")[0]) for k in r if k.startswith("cqa_label")
                        and k.endswith("_fields_mean"))  # fmt: skip
        if not labels:
            continue
        gen += (
            f"\nc-QA per label, {r['model']} (ratios to the judge's accuracy on real images of the label, to the "
            "within-class diversity of the prior's own samples of the label and of real test images of the label; "
            "share of seeds using learned fields; the label's own posterior codes decoded and judged, the same ratio: "
            "the autoencoder's reference):\n\n| label | accuracy | diversity / prior's | diversity / real | "
            "distinct | fields | own codes' accuracy |\n|---|---|---|---|---|---|---|\n"
        )
        for lab in labels:
            k = f"cqa_label{lab}"
            gen += (
                f"| {lab} | {_fmt_ci(r, k + '_relative_accuracy')} | {_fmt_ci(r, k + '_relative_diversity')} | "
                f"{_fmt_ci(r, k + '_relative_diversity_real')} | {_fmt_ci(r, k + '_distinct_fraction')} | "
                f"{r[k + '_fields_mean']:.2f} | {_fmt_ci(r, k + '_relative_posterior_accuracy')} |\n"
            )
    ood = ""
    if any("ood_auroc_neg_elbo_mean" in r for r in rows):
        ood = (
            f"\nOne-class OOD AUROC, classes {args.holdout} held out of training against the other test images "
            "(score: prior energy of the encoded mean -- BM E(m), Gaussian |mu|^2/2 -- and -ELBO):\n\n"
            "| model | AUROC prior energy | AUROC -ELBO |\n|---|---|---|\n"
            + "\n".join(
                f"| {r['model']} | {_fmt_ci(r, 'ood_auroc_prior_energy', 3)} | {_fmt_ci(r, 'ood_auroc_neg_elbo', 3)} |"
                for r in rows
                if "ood_auroc_neg_elbo_mean" in r
            )
            + "\n"
        )
    return head + "\n".join(lines) + "\n" + foot + ladder + gen + ood


def _band_plot(path: str, by_model: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    import numpy as np

    from qbm.plotting import _plt

    plt = _plt()
    keys = [("test_iw_loglik", f"test IW log-lik (K={args.iw_samples})"), ("test_elbo", "test ELBO"),
            ("test_kl", "rate (KL)"), ("test_recon_sampled", "recon (sampled z)")]  # fmt: skip
    fig, axes = plt.subplots(1, len(keys), figsize=(4.3 * len(keys), 3.6))
    for ax, (k, label) in zip(axes, keys):
        for i, (m, rs) in enumerate(by_model.items()):
            if not rs:
                continue
            curves = np.array([[h[k] if h[k] is not None else np.nan for h in r["history"]] for r in rs], dtype=float)
            ep = np.arange(1, curves.shape[1] + 1)
            mean = np.nanmean(curves, 0)
            ax.plot(ep, mean, color=f"C{i}", label=m)
            if len(rs) > 1:
                se = np.nanstd(curves, 0, ddof=1) / np.sqrt(len(rs))
                from qbm.studies.runner import t_quantile

                h = t_quantile(len(rs) - 1) * se
                ax.fill_between(ep, mean - h, mean + h, color=f"C{i}", alpha=0.2)
        ax.set_xlabel("epoch")
        ax.set_title(label, fontsize=9)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{args.dataset}: mean and 95% band over seeds {args.seeds}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _common(p: argparse.ArgumentParser, study: bool = False) -> None:
    p.add_argument("--dataset", default="digits", choices=["digits", "mnist", "fashion-mnist"])
    p.add_argument("--data-dir", default=None, help="directory with the IDX files (mnist, fashion-mnist)")
    add_download_flag(p)
    p.add_argument(
        "--binarize",
        default="none",
        choices=["none", "dynamic"],
        help="dynamic: a fresh Bernoulli draw of every training batch and one fixed binarisation of the test set "
        "per seed (dynamically binarised MNIST, as the VAE literature reports it); none: grey levels",
    )
    p.add_argument("--latent", type=positive_int, default=32)
    p.add_argument("--epochs", type=positive_int, default=30)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--lr", type=positive_float, default=2e-3)
    p.add_argument("--kl-warmup", type=nonneg_int, default=10, help="epochs of linear KL weight warm-up")
    p.add_argument(
        "--kl-start",
        type=unit_float,
        default=0.2,  # qbm.training.vae.KL_START (not imported here: it would load torch)
        help="KL weight at the start of the warm-up (near 0 the BM-VAE's encoder saturates on 28x28 images and "
        "no latent unit stays active)",
    )
    p.add_argument(
        "--gumbel-tau",
        type=positive_ratio,
        default=1.0,
        help="temperature of the BM-VAE's Gumbel straight-through relaxation (1/7 saturated the encoder on MNIST)",
    )
    p.add_argument("--graph", default="rbm", choices=["rbm", "zephyr", "full"])
    p.add_argument("--device", default="cpu", help="torch device of the models (cpu, cuda, cuda:1, ...)")
    p.add_argument("--chains", type=positive_int, default=128, help="negative-phase chains")
    p.add_argument("--sweeps", type=positive_int, default=10, help="sweeps per negative-phase call")
    p.add_argument(
        "--anneal-ns",
        type=positive_float,
        default=None,
        help="the schrodinger sampler's exact anneal time in ns (default 0.3)",
    )
    if not study:  # a study takes --seeds, --threads-per-run and --quiet from the runner options
        p.add_argument("--seed", type=seed_int, default=0)
        p.add_argument("--threads", type=threads_int, default=None)
        p.add_argument("--quiet", action="store_true")


def add_parsers(sub: Any, train: Any, study: Any) -> None:
    p = train.add_parser("vae", help="train a BM-VAE (or Gaussian VAE) and write metrics, checkpoint and images")
    _common(p)
    p.add_argument("--prior", default="bm", choices=["bm", "gaussian"])
    p.add_argument("--sampler", default="gibbs", choices=negative.names(), help="negative-phase prior sampler")
    p.add_argument("--mock", default=None, help="with --sampler qpu: offline stand-in, e.g. zephyr:4,4")
    p.add_argument("--arch", default="auto", choices=["auto", "mlp", "conv"])
    p.add_argument("--likelihood", default="bernoulli", choices=["bernoulli", "gaussian"])
    p.add_argument("--relaxation", default="gumbel", choices=["gumbel", "spike_exp"])
    p.add_argument("--holdout", type=int, nargs="*", default=None, help="classes left out of training (OOD AUROC)")
    p.add_argument("--anneal-sweeps", type=positive_int, default=1000)
    p.add_argument("--iw-samples", type=positive_int, default=50, help="IW samples per test image every epoch")
    p.add_argument("--iw-final", type=positive_int, default=1000, help="IW samples for the final test number")
    p.add_argument(
        "--final-images",
        type=positive_int,
        default=None,
        help="test images of the final evaluation (default: all; a fixed random subset otherwise)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in OUT (also to a larger --epochs)")
    p.add_argument("--force", action="store_true", help="start over even if OUT holds a run")
    p.add_argument("--out", default="runs/vae")
    p.set_defaults(func=cmd_train_vae, precheck=precheck_train_vae)

    p = sub.add_parser("generate", help="generate images from a trained VAE (prior, QA or c-QA mode)")
    p.add_argument("--model", required=True)
    p.add_argument("--mode", default="qa", choices=["prior", "qa", "cqa"])
    p.add_argument("--label", type=int, default=None)
    p.add_argument(
        "--lam", type=nonneg_float, default=None, help="c-QA bias strength lambda (default: the one chosen at training)"
    )
    p.add_argument(
        "--beta", type=positive_float, default=None, help="QA final beta (default: the one chosen at training)"
    )
    p.add_argument("--tau", type=positive_float, default=None, help="Gaussian VAE QA-mode temperature")
    p.add_argument("--data-dir", default=None, help="data for judging datasets other than digits")
    p.add_argument("--num", type=positive_int, default=64)
    p.add_argument("--anneal", default="sa", choices=list(ANNEALER_NAMES))
    p.add_argument("--sweeps", type=positive_int, default=1000)
    p.add_argument("--seed", type=seed_int, default=0)
    p.add_argument("--out", default="generated.png")
    p.set_defaults(func=cmd_generate, precheck=precheck_generate)

    cmp_ = sub.add_parser("compare", help="compare models").add_subparsers(dest="what")
    p = cmp_.add_parser("vae", help="BM prior (each sampler) vs Gaussian prior over seeds, ranked by IW log-lik")
    _common(p, study=True)
    p.add_argument(
        "--samplers",
        nargs="+",
        # exact DQA (2^latent amplitudes) is chosen by name, never by default
        default=[n for n in negative.names() if not negative.REGISTRY[n].needs_qpu and n != "schrodinger"],
        choices=[n for n in negative.names() if not negative.REGISTRY[n].needs_qpu],
    )
    p.add_argument("--target-elbo", type=float, default=None, help="default: the Gaussian VAE's mean final ELBO")
    p.add_argument(
        "--holdout",
        type=int,
        nargs="*",
        default=None,
        help="classes left out of every run's training; the table gains their OOD AUROC",
    )
    p.add_argument("--iw-samples", type=positive_int, default=50, help="IW samples per test image every epoch")
    p.add_argument("--iw-final", type=positive_int, default=1000, help="IW samples for the final numbers")
    p.add_argument(
        "--final-images",
        type=positive_int,
        default=None,
        help="test images of the final numbers (default: all; a fixed random subset otherwise)",
    )
    p.add_argument("--out", default="runs/compare-vae")
    from qbm.studies.cli_common import add_runner_options

    add_runner_options(p, seeds=5)
    p.set_defaults(func=cmd_compare_vae, precheck=precheck_compare_vae)
