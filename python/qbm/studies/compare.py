"""`qbm compare vae`'s run: one training of a prior at the shared budget (a plain function
of its config and seed, so the study runner can run it locally or on Ray)."""

from __future__ import annotations

from typing import Any


def _trainer(config: dict[str, Any], seed: int, data: Any) -> Any:
    from qbm.models.vae import BMVAE, GaussianVAE
    from qbm.training.vae import VAETrainer

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
        return VAETrainer(GaussianVAE(data.shape, config["latent"], seed=seed), data, **common)
    sampler = kind.split("/", 1)[1]
    m = BMVAE(data.shape, config["latent"], graph=config["graph"], tau=config.get("gumbel_tau", 1 / 7), seed=seed)
    opts = {"anneal_ns": config["anneal_ns"]} if "anneal_ns" in config else None
    return VAETrainer(m, data, sampler=sampler, num_chains=config["chains"], sweeps=config["sweeps"],
                      negative_options=opts, **common)  # fmt: skip


def estimate_seconds(config: dict[str, Any], data: Any, steps: int = 8) -> dict[str, float]:
    """A run's cost measured here on a few pieces (in this process, at its thread
    setting): ``steps`` training steps (after 2 to warm up) scaled to the epochs, the
    monitor's evaluation per epoch and the final evaluation from the IW cost of a few test
    images. Generation judging is not included."""
    import time

    import torch

    from qbm.models.evaluation import iw_loglik

    t = _trainer(config, 0, data)
    nb = -(-len(t.x_train) // t.batch_size)
    xb = t.x_train[: t.batch_size]
    t0 = time.perf_counter()
    for i in range(steps + 2):
        if i == 2:
            t0 = time.perf_counter()
        t.step(xb, 1.0)
    step = (time.perf_counter() - t0) / steps
    t0 = time.perf_counter()
    with torch.no_grad():
        iw_loglik(t.model, t.x_test[:4], config["iw_samples"], log_z=0.0)
    per_image = (time.perf_counter() - t0) / 4 / config["iw_samples"]  # per image and posterior sample
    n_final = len(t.x_test) if config.get("final_images") is None else min(config["final_images"], len(t.x_test))
    train = config["epochs"] * nb * step
    monitor = config["epochs"] * len(t.x_monitor) * config["iw_samples"] * per_image
    final = n_final * config["iw_final"] * per_image
    return {"train": train, "monitor": monitor, "final": final, "total": train + monitor + final}


def compare_run(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """One training of `qbm compare vae` (a run of the study runner): the prior
    ``config["model"]`` ("gaussian" or "bm/<sampler>") at the shared budget; returns the
    per-epoch history and the final test numbers at ``iw_final`` IW samples."""
    from qbm.data import load_dataset
    from qbm.studies.runner import report_progress

    data = load_dataset(config["dataset"], config.get("data_dir"))
    held = None
    if config.get("holdout"):
        data, held = data.without_classes(config["holdout"])
    kind = config["model"]
    t = _trainer(config, seed, data)

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
    def gen_say(m: str) -> None:
        say(f"generation: {m}")

    if kind == "gaussian":
        say("judging generation")
        gen = G.evaluate_gaussian(t.model, data, judge, seed=seed, progress=gen_say)
    else:
        gen = G.evaluate_bm(t.model, data, judge, seed=seed, progress=gen_say)
        gen = {k: v for k, v in gen.items() if not k.startswith("_")}  # images and arrays stay out of records
    return {
        "ood": ood,
        "generation": gen,
        "final": final,
        "history": [{k: h.get(k) for k in (*keys, "epoch", "epoch_seconds")} for h in t.history],
        "seconds_per_epoch": t.wall / max(1, t.epoch),
    }
