"""A stand-in for the CLIC electron showers: electromagnetic showers drawn from the
Grindhammer-Peters parametrisation, deposited on a 25 x 25 x 25 cell grid, then summed
over depth, rebinned and binarised exactly as the real files are (:mod:`qbm.data.calorimeter`).

This is not Geant4 and not the CLIC data; outputs name it "showers (GP stand-in)".

The parametrisation (G. Grindhammer and S. Peters, "The parameterized simulation of
electromagnetic showers in homogeneous and sampling calorimeters", hep-ex/0001020,
Appendix A; the constants below are theirs, for a homogeneous medium of charge Z):

* per shower, (ln T, ln alpha) is a correlated Gaussian with, for y = E / E_c,
  <ln T> = ln(ln y - 0.812), sigma(ln T) = (-1.4 + 1.26 ln y)^-1,
  <ln alpha> = ln(0.81 + (0.458 + 2.26 / Z) ln y), sigma(ln alpha) = (-0.58 + 0.86 ln y)^-1,
  rho = 0.705 - 0.023 ln y; the longitudinal energy profile is the Gamma density
  dE/dt ~ t^(alpha - 1) e^(-beta t), beta = (alpha - 1) / T, t in radiation lengths;
* the radial profile at depth tau = t / T is a core plus a tail,
  f(r) = p 2r R_C^2 / (r^2 + R_C^2)^2 + (1 - p) 2r R_T^2 / (r^2 + R_T^2)^2 (r in Moliere radii),
  R_C = z1 + z2 tau, z1 = 0.0251 + 0.00319 ln E, z2 = 0.1162 - 0.000381 Z,
  R_T = k1 (e^(k3 (tau - k2)) + e^(k4 (tau - k2))), k1 = 0.659 - 0.00309 Z, k2 = 0.645,
  k3 = -2.59, k4 = 0.3585 + 0.0421 ln E,
  p = p1 exp((p2 - tau) / p3 - exp((p2 - tau) / p3)), p1 = 2.632 - 0.00094 Z,
  p2 = 0.401 + 0.00187 Z, p3 = 1.313 - 0.0686 ln E (E in GeV; p clipped to [0, 1]);
* sampling fluctuations: the energy is carried by a Poisson number of equal spots with mean
  N = 10.3 / a E^0.959 (their sampling-calorimeter spot count, a the stochastic resolution
  term); each spot's depth is drawn from the shower's Gamma profile and its radius from
  f(r) at that depth, its azimuth uniformly.

The detector (CLIC-like silicon-tungsten ECAL; our choice, stated): Z = 74, critical
energy E_c = 610 MeV / (Z + 1.24) = 8.0 MeV, Moliere radius 9.3 mm, cells 5.1 mm
transverse and one radiation length deep, 25 x 25 x 25 cells, stochastic term a = 0.17;
electrons at normal incidence (fixed angle) entering the central cell at a uniformly
random point within it; energies uniform on [10, 100] GeV. Spots outside the grid are lost
(leakage), as in the real data. The sampling-calorimeter shifts of T and alpha (of order
0.5 / F_s) are left out: they move the shower maximum by about half a cell in depth,
which the depth sum removes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from qbm.data.calorimeter import GRID_FOR_N, pattern_distribution

GRID = 25


@dataclass(frozen=True)
class Detector:
    """Material and geometry of the stand-in calorimeter (see the module docstring)."""

    z: float = 74.0
    moliere_mm: float = 9.3
    cell_mm: float = 5.1
    layer_x0: float = 1.0
    stochastic: float = 0.17
    e_min_gev: float = 10.0
    e_max_gev: float = 100.0

    @property
    def critical_gev(self) -> float:
        return 0.610 / (self.z + 1.24)


def shower_parameters(energy: np.ndarray, rng: np.random.Generator, det: Detector = Detector()) -> dict[str, Any]:
    """Per-shower (T, alpha, beta) from the correlated log-normal fluctuations."""
    lny = np.log(energy / det.critical_gev)
    mu_t = np.log(lny - 0.812)
    s_t = 1.0 / (-1.4 + 1.26 * lny)
    mu_a = np.log(0.81 + (0.458 + 2.26 / det.z) * lny)
    s_a = 1.0 / (-0.58 + 0.86 * lny)
    rho = 0.705 - 0.023 * lny
    g1 = rng.standard_normal(energy.shape)
    g2 = rng.standard_normal(energy.shape)
    ln_t = mu_t + s_t * g1
    ln_a = mu_a + s_a * (rho * g1 + np.sqrt(1 - rho * rho) * g2)
    T, alpha = np.exp(ln_t), np.exp(ln_a)
    alpha = np.maximum(alpha, 1.0 + 1e-6)  # the profile needs alpha > 1 (a maximum at T > 0)
    return {"T": T, "alpha": alpha, "beta": (alpha - 1.0) / T}


def radial_parameters(tau: np.ndarray, energy: np.ndarray, det: Detector = Detector()) -> tuple[np.ndarray, ...]:
    """(R_C, R_T, p) at depth tau = t / T for showers of ``energy`` GeV."""
    le = np.log(energy)
    r_c = 0.0251 + 0.00319 * le + (0.1162 - 0.000381 * det.z) * tau
    k4 = 0.3585 + 0.0421 * le
    r_t = (0.659 - 0.00309 * det.z) * (np.exp(-2.59 * (tau - 0.645)) + np.exp(k4 * (tau - 0.645)))
    arg = (0.401 + 0.00187 * det.z - tau) / (1.313 - 0.0686 * le)
    p = np.clip((2.632 - 0.00094 * det.z) * np.exp(arg - np.exp(arg)), 0.0, 1.0)
    return r_c, r_t, p


def radial_cdf(r: np.ndarray, r_c: np.ndarray, r_t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """P(radius <= r) of the core-plus-tail profile (r in Moliere radii)."""
    return p * r * r / (r * r + r_c * r_c) + (1 - p) * r * r / (r * r + r_t * r_t)


def draw_spots(energy: np.ndarray, rng: np.random.Generator, det: Detector = Detector()) -> dict[str, np.ndarray]:
    """Spots of the showers of ``energy`` (GeV, (N,)): ``shower`` index, depth ``t`` (X0),
    radius ``r`` (Moliere radii), azimuth ``phi``, and the per-shower parameters and spot
    energy."""
    par = shower_parameters(energy, rng, det)
    mean_spots = 10.3 / det.stochastic * energy**0.959
    counts = rng.poisson(mean_spots)
    counts = np.maximum(counts, 1)
    shower = np.repeat(np.arange(len(energy)), counts)
    alpha, beta = par["alpha"][shower], par["beta"][shower]
    t = rng.gamma(alpha, 1.0 / beta)
    r_c, r_t, p = radial_parameters(t / par["T"][shower], energy[shower], det)
    core = rng.random(len(t)) < p
    u = rng.random(len(t))
    radius = np.where(core, r_c, r_t) * np.sqrt(u / (1.0 - u))
    phi = rng.random(len(t)) * (2 * math.pi)
    return {
        "shower": shower,
        "t": t,
        "r": radius,
        "phi": phi,
        "spot_energy": (energy / counts)[shower],
        "counts": counts,
        **par,
    }


def deposit(energy: np.ndarray, rng: np.random.Generator, det: Detector = Detector()) -> np.ndarray:
    """Energy grids (N, 25, 25, 25) (x, y, depth) of showers of ``energy`` GeV."""
    n = len(energy)
    s = draw_spots(energy, rng, det)
    entry = rng.random((n, 2)) + GRID // 2  # a uniform point in the central cell
    scale = det.moliere_mm / det.cell_mm
    x = entry[s["shower"], 0] + s["r"] * np.cos(s["phi"]) * scale
    y = entry[s["shower"], 1] + s["r"] * np.sin(s["phi"]) * scale
    z = s["t"] / det.layer_x0
    ix, iy, iz = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64), np.floor(z).astype(np.int64)
    keep = (ix >= 0) & (ix < GRID) & (iy >= 0) & (iy < GRID) & (iz >= 0) & (iz < GRID)
    flat = ((s["shower"] * GRID + ix) * GRID + iy) * GRID + iz
    out = np.bincount(flat[keep], weights=s["spot_energy"][keep], minlength=n * GRID**3)
    return out.reshape(n, GRID, GRID, GRID)


def generate(
    count: int, seed: int = 0, det: Detector = Detector(), chunk: int = 250, progress: bool = False
) -> Iterator[np.ndarray]:
    """``count`` showers in chunks of (<= chunk, 25, 25, 25), reproducible from ``seed``
    (chunk c from the stream (seed, c), so the showers do not depend on how many are asked for)."""
    if count < 1:
        raise ValueError(f"count: must be >= 1, got {count}")
    from tqdm import tqdm

    chunks = range(0, count, chunk)
    for c, start in enumerate(tqdm(chunks, desc="showers (GP stand-in)", disable=not progress, unit="chunk")):
        rng = np.random.default_rng([seed, c])
        m = min(chunk, count - start)
        energy = rng.uniform(det.e_min_gev, det.e_max_gev, m)
        yield deposit(energy, rng, det)


def depth_summed(count: int, seed: int = 0, det: Detector = Detector(), progress: bool = False) -> np.ndarray:
    """(count, 25, 25) depth-summed deposits, cached in qbm's cache directory by their
    parameters (a few seconds per 10^4 showers to make)."""
    from qbm.data.cache import file_cache_base, load_npy_cache, try_cache

    path = file_cache_base("showers", [], ("gp-showers-v1", count, seed, asdict(det))) + ".npy"
    arr = load_npy_cache(path, mmap=False, shape=(count, GRID, GRID))
    if arr is None:
        arr = np.concatenate([g.sum(axis=-1) for g in generate(count, seed, det, progress=progress)])
        try_cache(path, arr)
    return arr


def shower_distribution(n: int, count: int = 10000, seed: int = 0, progress: bool = False) -> np.ndarray:
    """Empirical distribution over 2^n patterns of ``count`` stand-in showers, binarised as
    the real files are (:func:`qbm.data.calorimeter.pattern_distribution`)."""
    if n not in GRID_FOR_N:  # checked before any shower is drawn
        raise ValueError(f"n: shower grids exist for n in {sorted(GRID_FOR_N)}, got {n}")
    return pattern_distribution(depth_summed(count, seed, progress=progress), n)
