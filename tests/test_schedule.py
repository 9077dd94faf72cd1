"""Device annealing schedules for SQA: units, the two forms agreeing, the Trotterised
marginal, the shipped table and the QPU stand-in."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import all_states, empirical, random_frustrated, tvd, tvd_bound

from qbm.qpu import SQAStandIn
from qbm.samplers import SQASampler, trotter_coupling
from qbm.samplers.schedule import (
    AnnealSchedule,
    advantage2_schedule,
    anneal_sweeps,
    beta_per_ghz,
)


def test_temperature_conversion_by_hand():
    # h = 6.62607015e-34 J s, k_B = 1.380649e-23 J/K: 1 GHz / (k_B 16 mK)
    # = 6.62607015e-25 / (1.380649e-23 * 0.016) = 6.62607015e-25 / 2.2090384e-25 = 2.99953
    assert beta_per_ghz(16.0) == pytest.approx(2.9995269, rel=1e-7)
    assert beta_per_ghz(12.0) == pytest.approx(2.9995269 * 16 / 12, rel=1e-7)
    with pytest.raises(ValueError, match="temperature_mk"):
        beta_per_ghz(0.0)


def test_anneal_time_to_sweeps_rule():
    assert anneal_sweeps(0.005) == 5  # 5 ns at the default one sweep per ns
    assert anneal_sweeps(20.0, sweeps_per_us=50) == 1000
    assert anneal_sweeps(0.001, sweeps_per_us=50, min_sweeps=20) == 20
    with pytest.raises(ValueError, match="anneal_time_us"):
        anneal_sweeps(-1.0)
    with pytest.raises(ValueError, match="sweeps_per_us"):
        anneal_sweeps(1.0, sweeps_per_us=0)


def _linear_as_device(beta: float) -> tuple[AnnealSchedule, float]:
    """A(s) = 2 (1 - s), B(s) = 2 s (gamma = 1) at the temperature whose beta_GHz is beta:
    the device form of H(s) = s H_p - (1 - s) sum X_i."""
    t_mk = beta_per_ghz(1.0) / beta  # beta_per_ghz(T) = beta
    return AnnealSchedule.from_functions(lambda s: 2 * (1 - s), lambda s: 2 * s, points=1001), t_mk


def test_device_form_is_the_gamma_s_form_bit_for_bit():
    """Where they coincide the two forms run the same chain: same spins, seed for seed."""
    m = random_frustrated(7, seed=2)
    beta = beta_per_ghz(16.0)
    sched, _ = _linear_as_device(beta)
    s_path = sched.s[100:1001:9]  # grid points: the table's values are exact there
    kw = dict(num_trotter_slices=8, num_reads=64, seed=5, s_schedule=s_path, return_slices=True)
    a = SQASampler().sample_model(m, beta=beta, gamma=1.0, **kw)
    b = SQASampler().sample_model(m, schedule=sched, temperature_mk=16.0, **kw)
    assert np.array_equal(a.spins, b.spins) and np.array_equal(a.energies, b.energies)
    assert b.info["beta_final"] == pytest.approx(beta * s_path[-1], rel=1e-12)
    for moves in ("local",):
        a = SQASampler().sample_model(m, beta=beta, gamma=1.0, moves=moves, **kw)
        b = SQASampler().sample_model(m, schedule=sched, temperature_mk=16.0, moves=moves, **kw)
        assert np.array_equal(a.spins, b.spins)


def test_device_form_matches_the_trotter_transfer_matrix_marginal():
    """At fixed s, the one-slice marginal of P-slice path integral with beta_p =
    beta_GHz B(s)/2, beta_x = beta_GHz A(s)/2: diag(M^P), M = exp(-beta_p E / P) exp(K z.z')."""
    model = random_frustrated(4, seed=11, h_scale=0.5)
    sched = advantage2_schedule()
    s0, t_mk, P, reads = 0.3, 16.0, 8, 20000
    a, b = sched(s0)
    bp, bx = beta_per_ghz(t_mk) * b / 2, beta_per_ghz(t_mk) * a / 2
    z = all_states(4).astype(np.float64)
    e = model.energy(z.astype(np.int8))
    K = trotter_coupling(bx, 1.0, 0.0, P)  # K = -(1/2) ln tanh(bx / P)
    M = np.exp(-bp / P * (e - e.min()))[:, None] * np.exp(K * (z @ z.T - 4))
    d = np.diag(np.linalg.matrix_power(M / np.abs(M).max(), P))
    p = d / d.sum()
    r = SQASampler().sample_model(
        model, schedule=sched, temperature_mk=t_mk, s=s0, num_trotter_slices=P, num_sweeps=100, num_reads=reads,
        seed=3,
    )  # fmt: skip
    assert tvd(empirical(r.spins), p) < tvd_bound(p, reads)
    # and not the classical Boltzmann distribution at beta_p (the transverse field matters)
    w = np.exp(-bp * (e - e.min()))
    assert tvd(w / w.sum(), p) > 3 * tvd_bound(p, reads)


def test_shipped_schedule_and_csv_loading(tmp_path):
    s = advantage2_schedule()
    assert s.version and "NOT D-Wave" in s.source and s.temperature_mk == 16.0
    a, b = s(np.array([0.0, 1.0]))
    assert a[0] > 5 and a[1] == 0 and b[1] > b[0]
    # D-Wave's published column names
    f = tmp_path / "dw.csv"
    f.write_text("s,A(s) (GHz),B(s) (GHz)\n0,6.0,0.1\n0.5,1.0,3.0\n1,0.0,9.0\n")
    t = AnnealSchedule.from_csv(str(f))
    assert t(0.25)[0] == pytest.approx(3.5) and t(0.75)[1] == pytest.approx(6.0)
    assert advantage2_schedule(str(f)).B[-1] == 9.0
    bad = tmp_path / "bad.csv"
    bad.write_text("s,A,B\n0,1,x\n1,0,2\n")
    with pytest.raises(ValueError, match="path"):
        AnnealSchedule.from_csv(str(bad))
    with pytest.raises(ValueError, match="path"):
        AnnealSchedule.from_csv(str(tmp_path / "missing.csv"))
    with pytest.raises(ValueError, match="s:"):
        AnnealSchedule(np.array([0.0, 0.5]), np.ones(2), np.ones(2))
    props = {"anneal_schedule_table": [[0, 5, 0.1], [1, 0, 8]], "temperature_mk": 15.0}
    assert AnnealSchedule.from_properties(props).temperature_mk == 15.0
    assert AnnealSchedule.from_properties({}) is None


def test_schedule_options_are_checked():
    m = random_frustrated(4, seed=0)
    with pytest.raises(ValueError, match="beta"):
        SQASampler().sample_model(m, schedule="advantage2", beta=2.0)
    with pytest.raises(ValueError, match="schedule"):
        SQASampler().sample_model(m, schedule="advantage9")
    with pytest.raises(ValueError, match="schedule"):
        SQASampler().sample_model(m, temperature_mk=12.0)
    with pytest.raises(ValueError, match="continuous_time"):
        SQASampler().sample_model(m, schedule="advantage2", continuous_time=True)
    r = SQASampler().sample_model(m, schedule="advantage2", anneal_time_us=0.02, num_reads=4, seed=0)
    assert r.info["num_sweeps"] == 20 and r.info["anneal_time_us"] == 0.02


def test_standin_anneals_on_the_device_schedule():
    import dimod

    bqm = random_frustrated(6, seed=3).to_bqm()
    st = SQAStandIn()
    ss = st.sample(bqm, num_reads=20, annealing_time=1.0, seed=1)
    assert ss.info["schedule"]["version"] == advantage2_schedule().version
    assert ss.info["num_sweeps"] == 50
    cold = SQAStandIn(temperature_mk=4.0).sample(bqm, num_reads=200, annealing_time=2.0, seed=1)
    hot = SQAStandIn(temperature_mk=200.0).sample(bqm, num_reads=200, annealing_time=2.0, seed=1)
    assert cold.record.energy.mean() < hot.record.energy.mean()
    assert isinstance(ss, dimod.SampleSet)
    with pytest.raises(ValueError, match="schedule"):
        SQAStandIn(schedule="nope")


def test_mock_advantage2_takes_the_schedule_from_the_environment(tmp_path, monkeypatch):
    from qbm.qpu import mock_advantage2

    f = tmp_path / "device.csv"
    f.write_text("# version: test-7\ns,A(s) (GHz),B(s) (GHz)\n0,6.0,0.1\n1,0.0,9.0\n")
    monkeypatch.setenv("QBM_ANNEAL_SCHEDULE", str(f))
    qpu = mock_advantage2(1, 1)
    assert qpu.substitute_sampler.schedule.version == "test-7"


def test_qpu_sampler_certifies_its_samples():
    """Advantage2Sampler(sample_model, certify=True) on the stand-in: the certificate's
    beta_eff (qbm's pseudo-likelihood root) equals dwave.system.temperatures' maximum
    pseudo-likelihood estimate on the same samples."""
    from qbm.problems import zephyr_spin_glass
    from qbm.qpu import Advantage2Sampler, mock_advantage2

    model = zephyr_spin_glass(1, 1, seed=2)
    qpu = Advantage2Sampler(child=mock_advantage2(1, 1), seed=3)
    r = qpu.sample_model(model, num_reads=200, annealing_time=0.5, certify=True)
    c = r.info["certificate"]
    assert c["target_beta"] is None and c["tv"] is not None
    assert np.isfinite(c["beta_eff"]) and c["beta_eff"] == pytest.approx(r.info["beta_eff"], rel=1e-6)


def test_qpu_sampler_reports_the_schedule_it_anneals_on():
    import dimod

    from qbm.qpu import Advantage2Sampler, mock_advantage2

    assert Advantage2Sampler(child=mock_advantage2(1, 1)).anneal_schedule.version == advantage2_schedule().version

    class Solver(dimod.Structured, dimod.Sampler):  # a structured solver whose properties carry a table
        nodelist, edgelist, parameters = [0, 1], [(0, 1)], {}
        properties = {"anneal_schedule_table": [[0, 7.0, 0.2], [0.5, 1.0, 4.0], [1, 0.0, 9.5]]}

        def sample(self, bqm, **kw):  # pragma: no cover - not sampled here
            raise NotImplementedError

    s = Advantage2Sampler(child=Solver()).anneal_schedule
    assert s.source == "solver properties" and s(0.5)[1] == pytest.approx(4.0)
