"""`qbm compare vae`'s run: one training of a prior at the shared budget (a plain function
of its config and seed, so the study runner can run it locally or on Ray)."""

from __future__ import annotations

from typing import Any


def compare_run(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """One training of `qbm compare vae` (a run of the study runner): the prior
    ``config["model"]`` ("gaussian" or "bm/<sampler>") at the shared budget; returns the
    per-epoch history and the final test numbers at ``iw_final`` IW samples."""
    from qbm.data import load_dataset
    from qbm.models.vae import BMVAE, GaussianVAE
    from qbm.training.vae import VAETrainer

    data = load_dataset(config["dataset"], config.get("data_dir"))
    held = None
    if config.get("holdout"):
        data, held = data.without_classes(config["holdout"])
    kind = config["model"]
    common = dict(
        device=config.get("device", "cpu"),
        seed=seed,
        lr=config["lr"],
        batch_size=config["batch_size"],
        kl_warmup=config["kl_warmup"],
        kl_start=config.get("kl_start", 0.0),
        iw_samples=config["iw_samples"],
        binarize=config.get("binarize", "none"),
        holdout=config.get("holdout") or (),
    )
    if kind == "gaussian":
        t = VAETrainer(GaussianVAE(data.shape, config["latent"], seed=seed), data, **common)
    else:
        sampler = kind.split("/", 1)[1]
        m = BMVAE(data.shape, config["latent"], graph=config["graph"], tau=config.get("gumbel_tau", 1 / 7), seed=seed)
        opts = {"anneal_ns": config["anneal_ns"]} if "anneal_ns" in config else None
        t = VAETrainer(m, data, sampler=sampler, num_chains=config["chains"], sweeps=config["sweeps"],
                       negative_options=opts, **common)  # fmt: skip
    from qbm.studies.runner import report_progress

    def say(text: str) -> None:
        report_progress(f"{kind} {text}")

    while t.epoch < config["epochs"]:
        t.train_epoch(progress=False, report=say)
    say(f"final evaluation (K = {config['iw_final']})")
    final = t.final_evaluation(config["iw_final"], config.get("final_images"))
    ood = None
    if held is not None:
        from qbm.training.vae import ood_auroc

        say("OOD AUROC of the held-out classes")
        ood = ood_auroc(t, data.rows("test"), held)
    keys = ("test_iw_loglik", "test_elbo", "test_recon_sampled", "test_recon_at_mode", "test_kl", "active_units")
    from qbm import generation as G

    judge = G.Judge(data)  # one cached judge per data set, shared by every run
    if kind == "gaussian":
        say("judging generation")
        gen = G.evaluate_gaussian(t.model, data, judge, seed=seed)
    else:
        gen = G.evaluate_bm(t.model, data, judge, seed=seed, progress=lambda m: say(f"generation: {m}"))
        gen = {k: v for k, v in gen.items() if not k.startswith("_")}  # images and arrays stay out of records
    return {
        "ood": ood,
        "generation": gen,
        "final": final,
        "history": [{k: h.get(k) for k in (*keys, "epoch", "epoch_seconds")} for h in t.history],
        "seconds_per_epoch": t.wall / max(1, t.epoch),
    }
