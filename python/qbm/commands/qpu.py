"""`qbm qpu embed` and `qbm qpu sample`."""

from __future__ import annotations

from qbm.cli_types import nonneg_float, positive_float, positive_int, seed_int

import argparse
import os
from typing import Any


def _sampler(args: argparse.Namespace, mode: str) -> Any:
    from qbm.qpu import Advantage2Sampler, parse_mock

    child = parse_mock(args.mock) if args.mock else None
    if child is None and not args.solver:
        print("qbm qpu: no --mock given; connecting to D-Wave with your configured credentials")
    return Advantage2Sampler(
        child, mode=mode, solver=args.solver, cache_dir=args.cache, verbose=True,
        max_qpu_seconds=getattr(args, "max_qpu_seconds", 60.0),
    )  # fmt: skip


def _prior(path: str) -> Any:
    from qbm.models.vae import BMVAE
    from qbm.training.vae import load_vae

    model, ck = load_vae(path)
    if not isinstance(model, BMVAE):
        raise ValueError(f"model: {path!r} holds a Gaussian VAE; the QPU samples Boltzmann priors")
    return model, ck


def cmd_embed(args: argparse.Namespace) -> int:
    model, _ = _prior(args.model)
    s = _sampler(args, "qa")
    bqm = model.prior.to_ising().to_bqm()
    emb = s.embedding_for(bqm)
    from qbm.qpu import chain_length_stats

    st = chain_length_stats(emb)
    print(f"prior: {model.prior.n} units, {model.prior.num_edges} couplings ({model.prior.graph_name} graph)")
    print(
        f"embedding ({getattr(s, 'last_embedding_method', 'cached')}): {st['qubits']} qubits, chain length "
        f"max {st['max_chain']}, mean {st['mean_chain']:.2f}, median {st['median_chain']:.1f}, "
        f"{st['chains_longer_than_1']} chains longer than one qubit"
    )
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from qbm.generation import decode
    from qbm.plotting import save_image_grid

    model, ck = _prior(args.model)
    s = _sampler(args, args.mode)
    field = None
    if args.mode == "cqa":
        from qbm.generation import cqa_field

        if args.label is None:
            raise ValueError("--label: --mode cqa needs --label")
        field, how, _ = cqa_field(ck, args.label, args.lam, args.model)
        print(f"c-QA field of label {args.label}: {how}")
    ising = model.prior.to_ising(extra_field=field)
    scale = None
    if args.calibrate_beta:
        from qbm.qpu.sampler import calibrate_energy_scale

        # beta = 1 relative to the prior (what the model was trained for), steered on the
        # prior itself, then used for the requested mode
        cal = calibrate_energy_scale(s, model.prior.to_ising(), num_reads=args.num_reads, seed=args.seed + 1)
        for k, h in enumerate(cal["history"]):
            print(f"calibration {k + 1}: scale {h['scale']:.4g} -> beta_eff {h['beta_eff']:.3f} "
                  f"[{h['beta_low']:.3f}, {h['beta_high']:.3f}]")  # fmt: skip
        scale = cal["energy_scale"]
        reached = "beta = 1 reached (its 95% interval holds 1)" if cal["converged"] else "not converged: last step"
        print(f"energy scale {scale:.4g} ({reached})")
    # the model was trained for beta = 1 (c-QA: the tilted prior at beta = 1), so that is the
    # question the certificate answers
    res = s.sample_model(
        ising, num_reads=args.num_reads, seed=args.seed, energy_scale=scale, certify=True, target_beta=1.0
    )
    info = res.info
    print(
        f"mode {args.mode}: {len(res)} samples, mean energy {res.energies.mean():.3f}, chain-break fraction "
        f"{info['chain_break_fraction']:.4f}, scale {info['scale']:.4g}, chain strength {info['chain_strength']:.3g}"
    )
    cert = info["certificate"]
    print(f"certificate: {cert}")
    print(beta_eff_meaning(cert, calibrated=bool(args.calibrate_beta)))
    print(f"QPU access time {info['qpu_access_time_us'] / 1e3:.1f} ms over {info['submissions']} submission(s)")
    if args.out:
        from qbm.generation import describe_metrics, judge_generated

        imgs = decode(model, res.spins[:64])
        save_image_grid(args.out, imgs.transpose(0, 2, 3, 1), title=f"QPU samples, mode {args.mode}")
        m = judge_generated(ck, model, decode(model, res.spins), args.mode, args.label, seed=args.seed)
        print(f"wrote {args.out}" + describe_metrics(m, args.mode, args.label))
    return 0


def beta_eff_meaning(cert: dict[str, Any], *, calibrated: bool) -> str:
    """One line: what the samples' beta_eff means for a model trained at beta = 1, and
    what to do about it."""
    b = cert.get("beta_eff")
    if b is None:
        return "beta_eff: not estimated"
    lo, hi = cert["beta_eff_ci"]
    if lo <= 1.0 <= hi:
        return f"beta_eff {b:.3g}: the samples match your model's temperature (beta = 1) within the interval"
    if b == float("inf"):
        what = "frozen: every spin agrees with its field, colder than any temperature"
    elif b > 1:
        what = f"{b:.3g}x colder than your model (beta = 1): fewer, sharper modes than the model holds"
    else:
        what = f"{1 / b:.3g}x hotter than your model (beta = 1): more random than the model"
    hint = (
        "the calibration did not reach beta = 1: raise --num-reads for the probes"
        if calibrated
        else "rerun with --calibrate-beta to steer the energy scale until beta_eff holds 1"
    )
    return f"beta_eff {b:.3g}: {what}; {hint}"


def add_parsers(sub: Any) -> None:
    qpu = sub.add_parser("qpu", help="D-Wave Advantage2 backend").add_subparsers(dest="qpu_cmd")
    for name, fn, helptext in (
        ("embed", cmd_embed, "embed a trained prior and print chain statistics"),
        ("sample", cmd_sample, "sample a trained prior in a given mode"),
    ):
        p = qpu.add_parser(name, help=helptext)
        p.add_argument("--model", required=True, help="DIR/model.pt from qbm train vae")
        p.add_argument("--solver", default=None, help="D-Wave solver name (needs credentials)")
        p.add_argument("--mock", default=None, help="offline stand-in, e.g. zephyr:4,4 (zephyr:4,4:exact: exact)")
        p.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "qbm", "embeddings"))
        if name == "sample":
            p.add_argument("--mode", default="qa", choices=["dqa", "qa", "cqa"])
            p.add_argument("--num-reads", type=positive_int, default=100)
            p.add_argument(
                "--max-qpu-seconds",
                type=positive_float,
                default=60.0,
                help="refuse, before any submission, a call estimated to need more QPU access time (seconds)",
            )
            p.add_argument(
                "--calibrate-beta",
                action="store_true",
                help="steer the energy scale until beta_eff relative to the prior holds 1 (probe calls)",
            )
            p.add_argument("--label", type=int, default=None)
            p.add_argument(
                "--lam",
                type=nonneg_float,
                default=None,
                help="c-QA bias strength (default: the lambda chosen at training, else 1.0)",
            )
            p.add_argument("--seed", type=seed_int, default=0)
            p.add_argument("--out", default=None, help="PNG of decoded samples")
        p.set_defaults(func=fn)
