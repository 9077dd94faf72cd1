"""The Schrödinger annealer against exact answers: Landau-Zener, the adiabatic and sudden
limits, dense-matrix exponentiation and an ODE solver, step doubling's error estimate,
bit-identical seeds on 1 or 2 threads, and the Lanczos gap."""

from __future__ import annotations

import math

import dimod
import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.integrate import solve_ivp
from scipy.sparse.linalg import expm_multiply

from helpers import interrupted_after, tvd
from qbm import IsingModel, _core
from qbm.models.prior import zephyr_edges
from qbm.problems import spin_glass
from qbm.samplers import SchrodingerAnnealer
from qbm.samplers.schedule import advantage2_schedule
from qbm.samplers.schrodinger import anneal_trace, lowest_eigenpairs


def glass(n: int, seed: int = 0) -> IsingModel:
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(zephyr_edges(n))
    return spin_glass(g, seed=seed)


def dense_h(model: IsingModel, a: float, b: float) -> np.ndarray:
    """-a/2 sum X_q + b/2 E(z), built independently of the core (qubit q = bit 2^(n-1-q),
    bit 0 = spin +1)."""
    n = model.num_variables
    d = 1 << n
    idx = np.arange(d)
    spins = np.stack([1 - 2 * ((idx >> (n - 1 - q)) & 1) for q in range(n)], axis=1)
    e = model.energy(spins.astype(np.int8)) - model.offset
    h = np.diag(0.5 * b * e).astype(complex)
    for q in range(n):
        h[idx, idx ^ (1 << (n - 1 - q))] += -0.5 * a
    return h


def state(res) -> np.ndarray:
    return res.info["state"]


def test_landau_zener():
    """One spin, A = Delta held, B h swept linearly from -X to X: P_excite = exp(-pi^2 Delta^2 / v)."""
    model = IsingModel(np.array([1.0]), np.zeros((1, 1)))
    delta, x = 1.0, 400.0  # finite-sweep corrections fall off as Delta / X
    for p_want in (0.2, 0.5, 0.8):
        v = math.pi**2 * delta**2 / -math.log(p_want)  # GHz / ns
        t_ns = 2 * x / v
        res = SchrodingerAnnealer().sample_model(
            model, time_schedule=(lambda t: np.full_like(t, delta), lambda t, v=v: -x + v * t),
            anneal_time_us=t_ns / 1e3, initial_state=[1], num_reads=10, return_state=True, seed=0,
        )  # fmt: skip
        # B < 0 at the start: spin +1 is the ground state; it is the excited state at the end
        p_exc = res.info["probabilities"][0]
        assert abs(p_exc - p_want) < 0.01, (p_want, p_exc)


def test_adiabatic_and_sudden_limits():
    model = glass(8, seed=3)
    e = model.energy(np.array([[1 - 2 * ((x >> (7 - q)) & 1) for q in range(8)] for x in range(256)], dtype=np.int8))
    slow = SchrodingerAnnealer().sample_model(model, anneal_time_us=2.0, num_reads=200, seed=1, return_state=True)
    assert slow.info["ground_state_probability"] > 0.99
    assert np.all(np.isclose(slow.energies, e.min()) | (slow.energies > e.min()))
    sudden = SchrodingerAnnealer().sample_model(model, anneal_time_us=1e-7, num_reads=10, seed=1, return_state=True)
    assert np.allclose(sudden.info["probabilities"], 1 / 256, atol=1e-5)


def test_constant_hamiltonian_equals_expm_multiply():
    model = glass(6, seed=1)
    a, b, t_ns = 1.3, 2.1, 7.0
    res = SchrodingerAnnealer().sample_model(
        model, time_schedule=(lambda t: np.full_like(t, a), lambda t: np.full_like(t, b)),
        anneal_time_us=t_ns / 1e3, num_reads=1, return_state=True, tv_target=1e-6, seed=0,
    )  # fmt: skip
    psi0 = np.full(64, 1 / 8, dtype=complex)
    want = expm_multiply(-2j * np.pi * t_ns * sp.csr_array(dense_h(model, a, b)), psi0)
    got = state(res)
    assert tvd(np.abs(got) ** 2, np.abs(want) ** 2) < 3 * res.info["tv_error_estimate"] + 1e-9
    assert abs(abs(np.vdot(want, got)) - 1) < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("t_us", [0.005, 0.03])
def test_device_anneal_matches_ode_and_error_estimate(t_us):
    """A forward anneal on the packaged schedule against an independent ODE solution; the
    Richardson estimate of the TV error is within 3x of the true TV error."""
    model = glass(6, seed=2)
    table = advantage2_schedule()
    t_ns = t_us * 1e3
    res = SchrodingerAnnealer().sample_model(model, anneal_time_us=t_us, num_reads=1, return_state=True, seed=0)

    hx, hz = dense_h(model, 1.0, 0.0), dense_h(model, 0.0, 1.0)

    def rhs(t, y):
        a, b = table(np.array([t / t_ns]))
        return -2j * np.pi * (a[0] * (hx @ y) + b[0] * (hz @ y))

    sol = solve_ivp(rhs, (0, t_ns), np.full(64, 1 / 8, dtype=complex), method="DOP853", rtol=1e-11, atol=1e-12)
    want = sol.y[:, -1]
    true_tv = tvd(np.abs(state(res)) ** 2, np.abs(want) ** 2)
    est = res.info["tv_error_estimate"]
    assert res.info["converged"] and res.info["tv_error"] <= 1e-3
    assert est / 3 <= true_tv <= 3 * est, (true_tv, est)


def test_seeds_reproduce_bits_on_one_or_two_threads():
    model = glass(13, seed=0)  # 13 qubits: two above the core's 11-qubit blocks
    kw = dict(anneal_time_us=0.003, num_reads=500, seed=7, return_state=True)
    r1 = SchrodingerAnnealer().sample_model(model, num_threads=1, **kw)
    r2 = SchrodingerAnnealer().sample_model(model, num_threads=2, **kw)
    assert state(r1).tobytes() == state(r2).tobytes()
    assert np.array_equal(r1.spins, r2.spins)
    r3 = SchrodingerAnnealer().sample_model(model, num_threads=2, **{**kw, "seed": 8})
    assert not np.array_equal(r1.spins, r3.spins)
    # reads follow |psi|^2: energies are the model's, and the empirical mean matches
    assert np.allclose(r1.energies, model.energy(r1.spins))
    assert abs(r1.energies.mean() - r1.info["mean_energy"]) < 5 * r1.energies.std() / math.sqrt(500)


def test_lanczos_two_level_gap_and_dense():
    model = IsingModel(np.array([0.7]), np.zeros((1, 1)))
    a, b = 1.5, 2.0
    w, _ = lowest_eigenpairs(model, a, b, k=1)
    assert w[0] == pytest.approx(-0.5 * math.hypot(a, b * 0.7), abs=1e-12)
    g = glass(8, seed=4)  # 256 states: the Lanczos path
    w, v = lowest_eigenpairs(g, 0.9, 1.7, k=3)
    ref = np.linalg.eigvalsh(dense_h(g, 0.9, 1.7).real)
    assert np.allclose(w, ref[:3], atol=1e-8)
    h = dense_h(g, 0.9, 1.7).real
    assert np.allclose(h @ v[:, 0], w[0] * v[:, 0], atol=1e-6)


def test_anneal_trace_follows_the_ground_state_when_slow():
    tr = anneal_trace(glass(6, seed=5), anneal_time_us=1.0, points=5)
    assert tr[0]["ground_overlap"] > 0.999  # |+> is close to H(0)'s ground state (B(0) = 0.2 GHz)
    assert all(r["ground_overlap"] > 0.95 for r in tr)
    fast = anneal_trace(glass(6, seed=5), anneal_time_us=0.001, points=5)
    assert fast[-1]["ground_overlap"] < 0.5
    assert all(r["gap"] > 0 for r in tr[:-1])


def test_schedules_pause_reverse_and_bad_input():
    model = glass(5, seed=0)
    s = SchrodingerAnnealer()
    # a pause at s = 0.4 changes the outcome; a schedule equal to the plain forward anneal does not
    plain = s.sample_model(model, anneal_time_us=0.01, num_reads=1, return_state=True, seed=0)
    same = s.sample_model(model, anneal_schedule=[(0, 0), (0.01, 1)], num_reads=1, return_state=True, seed=0)
    assert np.allclose(plain.info["probabilities"], same.info["probabilities"], atol=1e-3)
    paused = s.sample_model(model, anneal_schedule=[(0, 0), (0.004, 0.4), (0.104, 0.4), (0.11, 1)], num_reads=1,
                            return_state=True, seed=0)  # fmt: skip
    assert tvd(paused.info["probabilities"], plain.info["probabilities"]) > 0.01
    start = np.array([1, -1, 1, 1, -1])
    rev = s.sample_model(model, anneal_schedule=[(0, 1), (0.005, 0.6), (0.01, 1)], initial_state=start, num_reads=50,
                         seed=0)  # fmt: skip
    assert rev.spins.shape == (50, 5)
    with pytest.raises(ValueError, match="initial_state"):
        s.sample_model(model, anneal_schedule=[(0, 1), (0.01, 1)])
    with pytest.raises(ValueError, match="anneal_schedule"):
        s.sample_model(model, anneal_schedule=[(0, 0), (0.01, 0.5)])
    with pytest.raises(ValueError, match="anneal_time_us"):
        s.sample_model(model, anneal_time_us=0.01, anneal_schedule=[(0, 0), (0.01, 1)])
    with pytest.raises(ValueError, match="tv_target"):
        s.sample_model(model, tv_target=0)
    with pytest.raises(ValueError, match="time_schedule"):
        s.sample_model(model, time_schedule=(1.0, 2.0))
    with pytest.raises(ValueError, match="energy_scale"):
        s.sample_model(model, energy_scale=float("nan"))
    with pytest.raises(ValueError, match="^max_steps: .* needs at least"):  # refused before any allocation
        s.sample_model(model, anneal_time_us=10.0, energy_scale=1e9)
    with pytest.raises(ValueError, match="^energies:"):
        _core.TransverseIsing(energies=np.zeros(3))  # not 2^n values


def test_too_many_spins_is_refused_naming_n():
    big = IsingModel(np.zeros(31), sp.csr_array((31, 31)))
    with pytest.raises(ValueError, match="^n: "):
        SchrodingerAnnealer().sample_model(big)
    avail = _core.available_memory()
    if avail is not None and avail < (1 << 30) * 56:
        with pytest.raises(MemoryError, match="^n: "):
            SchrodingerAnnealer().sample_model(IsingModel(np.zeros(30), sp.csr_array((30, 30))))


def test_dimod_interface_and_certificate():
    model = glass(6, seed=0)
    bqm = model.to_bqm().change_vartype(dimod.BINARY, inplace=False)
    ss = SchrodingerAnnealer().sample(bqm, anneal_time_us=0.01, num_reads=20, seed=3)
    assert set(np.unique(ss.record.sample)) <= {0, 1}
    assert np.allclose(ss.record.energy, bqm.energies(ss))
    r = SchrodingerAnnealer().sample_model(model, anneal_time_us=0.01, num_reads=300, seed=3, certify=True)
    assert "beta_eff" in r.info["certificate"]


def test_exact_qpu_standin_through_the_backend():
    from qbm.qpu import Advantage2Sampler, mock_advantage2, parse_mock

    model = glass(4, seed=1)
    q = Advantage2Sampler(mock_advantage2(1, 1, dynamics="exact"), mode="dqa", annealing_time=0.005)
    r = q.sample_model(model, num_reads=100, seed=2)
    assert r.spins.shape == (100, 4)
    assert np.allclose(r.energies, model.energy(r.spins))
    again = Advantage2Sampler(mock_advantage2(1, 1, dynamics="exact"), mode="dqa", annealing_time=0.005)
    assert np.array_equal(again.sample_model(model, num_reads=100, seed=2).spins, r.spins)
    assert type(parse_mock("zephyr:1,1:exact").substitute_sampler).__name__ == "SchrodingerStandIn"
    with pytest.raises(ValueError, match="dynamics"):
        mock_advantage2(1, 1, dynamics="lindblad")


def test_exact_dqa_negative_phase_steers_beta_eff_towards_one():
    import torch

    from qbm.models.prior import BoltzmannPrior
    from qbm.registry import make_prior_sampler

    prior = BoltzmannPrior(6, graph="full", init_scale=0.5, seed=0)
    neg = make_prior_sampler("schrodinger", 400, seed=0, anneal_ns=1.0)
    scales, betas = [], []
    for _ in range(6):
        z = neg.sample(prior)
        assert isinstance(z, torch.Tensor) and z.shape == (400, 6)
        scales.append(neg.last_info["scale"])
        betas.append(neg.last_info["beta_eff"])
    assert abs(math.log(betas[-1])) < abs(math.log(betas[0])) or abs(math.log(betas[-1])) < 0.2
    state_dict = neg.state_dict()
    fresh = make_prior_sampler("schrodinger", 400, seed=0)  # the default anneal, replaced by the saved one
    fresh.load_state_dict(state_dict)
    assert fresh.scale == neg.scale and fresh.steps == neg.steps and fresh.anneal_time_us == 1e-3


def test_ctrl_c_stops_an_anneal_within_a_second():
    model = glass(18, seed=0)  # about 40 s of steps on one thread
    run = SchrodingerAnnealer(num_threads=1).sample_model
    assert interrupted_after(0.5, lambda: run(model, anneal_time_us=1.0, progress=False)) < 2.0


def test_linear_quench_prediction_is_the_short_anneal_limit():
    """To first order in the quench the output is Boltzmann in the couplings at
    beta_pred = 8 pi^2 int A(t1) int B(t2) (fields at half weight): check the exact
    |psi|^2 of a field-free glass against it, and that it fails at longer anneals."""
    from qbm.diagnostics import all_states
    from qbm.studies.dqa import linear_quench_beta

    g = nx.Graph()
    g.add_nodes_from(range(8))
    g.add_edges_from(zephyr_edges(8))
    model = spin_glass(g, seed=0, h_scale=0.0)
    e = model.energy(all_states(8))[::-1]  # the annealer's order: bit 0 = spin +1
    table = advantage2_schedule()
    for t_us, tol in ((2e-5, 0.02), (5e-5, 0.06)):
        p = (
            SchrodingerAnnealer()
            .sample_model(model, anneal_time_us=t_us, num_reads=1, return_state=True)
            .info["probabilities"]
        )
        fitted = -np.polyfit(e, np.log(p), 1)[0]
        assert fitted == pytest.approx(linear_quench_beta(table, t_us), rel=tol)
    p = (
        SchrodingerAnnealer()
        .sample_model(model, anneal_time_us=1e-3, num_reads=1, return_state=True)
        .info["probabilities"]
    )
    assert -np.polyfit(e, np.log(p), 1)[0] < 0.5 * linear_quench_beta(table, 1e-3)


def test_calibrate_energy_scale_steers_the_exact_annealer():
    """As on the QPU path: the probe calls move the energy scale until beta_eff (MPL,
    relative to the model) holds the target; fast quenches are hot, so the scale rises."""
    from qbm.qpu import calibrate_energy_scale

    model = glass(6, seed=2)
    cal = calibrate_energy_scale(SchrodingerAnnealer(), model, target_beta=0.8, num_reads=2000, rounds=6,
                                 anneal_time_us=0.0002)  # fmt: skip
    hist = cal["history"]
    assert hist[0]["scale"] == 1.0 and hist[0]["beta_high"] < 0.8
    assert cal["converged"] and cal["energy_scale"] > 2.0
    assert hist[-1]["beta_low"] <= 0.8 <= hist[-1]["beta_high"]
    assert all(b["beta_eff"] > a["beta_eff"] for a, b in zip(hist, hist[1:]))  # a larger scale is colder
