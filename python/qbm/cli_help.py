"""Help text for the command line's flags, in one place, and the formatter that shows
every flag's default. :func:`apply` fills in the help of any flag defined without one
(by (command, flag) first, then by flag) and switches every parser to
``ArgumentDefaultsHelpFormatter``; a test checks that no flag is left without help."""

from __future__ import annotations

import argparse

# flags that mean the same thing wherever they appear
COMMON: dict[str, str] = {
    "--seed": "random seed (same seed, same result on any number of threads)",
    "--threads": "threads for qbm's samplers and torch (default: QBM_NUM_THREADS or all cores)",
    "--quiet": "no progress bars",
    "--out": "output directory",
    "--num-reads": "number of samples (reads)",
    "--num-sweeps": "Monte Carlo sweeps per read",
    "--dataset": "data set (digits is embedded; others are read from --data-dir)",
    "--data-dir": "local directory holding the data set's files (with --download: where to fetch them)",
    "--latent": "latent dimension (number of latent spins for a BM prior)",
    "--epochs": "training epochs",
    "--batch-size": "minibatch size",
    "--lr": "Adam learning rate",
    "--graph": "prior graph: rbm (bipartite), zephyr (Advantage2 topology) or full",
    "--layers": "circuit layers",
    "--qubits": "qubits of the quantum generator",
    "--gen-width": "hidden width of the classical generator",
    "--gen-depth": "hidden layers of the classical generator",
    "--disc-width": "hidden width of the discriminator",
    "--disc-depth": "hidden layers of the discriminator",
    "--loss": "training loss",
    "--lr-g": "generator learning rate",
    "--lr-d": "discriminator learning rate",
    "--generator": "generator kind",
    "--cache": "directory of cached embeddings",
    "--label": "class label to condition on (c-QA mode)",
    "--mode": "sampling mode: dqa (fast anneal), qa (slow anneal), cqa (slow anneal with bias fields)",
    "--target": "target distribution",
    "--shots": "measurement shots per estimate (default: exact probabilities)",
    "--steps": "optimisation steps",
    "--n": "number of qubits",
}

# (command path, flag) -> help, where the meaning is the command's own
SPECIFIC: dict[tuple[str, str], str] = {
    ("spin-glass", "--num-reads"): "reads of each sampler",
    ("spin-glass", "--num-sweeps"): "sweeps per read (annealing schedule length and Gibbs sweeps)",
    ("spin-glass", "--seed"): "seed of the spin glass and of the samplers",
    ("study mmd-variance", "--n-max"): "largest n of the closed form",
    ("study mmd-variance", "--numeric-max"): "largest n estimated numerically",
    ("study mmd-variance", "--samples"): "random circuits per numerical estimate",
    ("study mmd-variance", "--target"): "target distribution: ghz or a point mass",
    ("study mmd-variance", "--seed"): "seed of the numerical estimates",
    ("study kl-vs-mmd", "--shots"): "shots per estimate (default: the budget's)",
    ("study kl-vs-mmd", "--losses"): "losses compared",
    ("study kl-vs-mmd", "--steps"): "Adam steps per run (default: the budget's)",
    ("study kl-vs-mmd", "--target"): "bas | ghz | cardinality | sparse[:K] | showers (GP stand-in) | calo:PATH",
    ("study gradient-variance", "--ansatz"): "ansatzes: product (depth 0), line and all_to_all (L = 1, 2, n/2)",
    ("study spurious-minima", "--losses"): "losses trained on the even-parity target (MMD at the mixture, n/4 or 1)",
    ("study shower-losses", "--losses"): "losses compared on the teacher target",
    ("study shower-losses", "--teacher-steps"): "exact-KL steps fitting each teacher circuit to the showers",
    ("study trainability", "--skip"): "parts left out of this call",
    ("study capacity", "--generator"): "generator kind of the base configuration (the study sets it per generator)",
    ("study capacity-calibrate", "--budget"): "paper: the paper's per-run budget; smoke: the machinery in minutes",
    ("study capacity-calibrate", "--generator"): "generator kind of the base configuration (calibration: quantum)",
    ("study capacity-calibrate", "--seeds"): "calibration seeds, disjoint from the study's 0..9",
    ("train qcbm", "--target"): "bas | ghz | cardinality | sparse[:K] | showers (GP stand-in) | calo:PATH",
    ("train qcbm", "--loss"): "mmd, kl or local fidelity",
    ("train qcbm", "--ansatz"): "entangling layout of each layer",
    ("train qcbm", "--layers"): "circuit layers",
    ("train vae", "--prior"): "bm (Boltzmann-machine prior) or gaussian (the baseline VAE)",
    ("train vae", "--arch"): "encoder / decoder: mlp, conv, or auto (conv for larger images)",
    ("train vae", "--likelihood"): "decoder likelihood of the pixels",
    ("train vae", "--relaxation"): "continuous relaxation of the binary latents for the reparameterised gradient",
    ("train vae", "--anneal-sweeps"): "sweeps of the QA-mode anneal that draws samples.png",
    ("train qgan", "--loss"): "wgan-gp (Wasserstein with gradient penalty) or ns (non-saturating)",
    ("train qgan", "--generator"): "quantum (style-based circuit) or classical (MLP) generator",
    ("generate", "--model"): "DIR/model.pt written by qbm train vae",
    ("generate", "--mode"): "prior (the learned prior sampled at beta = 1), qa (annealed to the final beta chosen "
    "at training) or cqa (the tilted prior at beta = 1: the prior plus the label's bias fields)",
    ("generate", "--num"): "number of images",
    ("generate", "--anneal"): "annealer of the QA / c-QA modes",
    ("generate", "--sweeps"): "anneal length in sweeps",
    ("generate", "--out"): "PNG file of the sample grid",
    ("compare vae", "--samplers"): "negative-phase samplers of the BM-VAEs compared with the Gaussian VAE",
    ("qpu embed", "--cache"): "directory of cached embeddings",
    ("qpu sample", "--num-reads"): "QPU reads",
    ("qpu sample", "--label"): "class label of the c-QA mode",
}


def _walk(parser: argparse.ArgumentParser, path: str):
    yield path, parser
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sp in a.choices.items():
                yield from _walk(sp, f"{path} {name}".strip())


class DefaultsFormatter(argparse.HelpFormatter):
    """Shows a flag's default once: not where the help already names one, nor for flags
    whose default is None (unset) or False (a switch)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        d = action.default
        if "default" in text or d is None or d is False or d is argparse.SUPPRESS or not action.option_strings:
            return text
        return text + " (default: %(default)s)"


def apply(parser: argparse.ArgumentParser) -> None:
    """Give every flag help text and every parser a formatter that shows defaults once;
    refuse abbreviated flags (``--epoch`` is not taken for ``--epochs``)."""
    for path, p in _walk(parser, ""):
        p.formatter_class = DefaultsFormatter
        p.allow_abbrev = False
        for a in p._actions:
            if not a.option_strings or a.help is not None:
                continue
            flag = max(a.option_strings, key=len)
            text = SPECIFIC.get((path, flag)) or COMMON.get(flag)
            if text is not None:
                a.help = text


def missing_help(parser: argparse.ArgumentParser) -> list[str]:
    """``command flag`` of every flag without help text (the test wants none)."""
    return [
        f"qbm {path} {a.option_strings[0]}".replace("  ", " ")
        for path, p in _walk(parser, "")
        for a in p._actions
        if a.option_strings and not a.help
    ]
