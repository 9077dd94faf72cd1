import dimod
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from qbm import IsingModel
from helpers import all_states, random_frustrated


def direct_energy(h, J, s):
    s = s.astype(float)
    return s @ h + 0.5 * np.einsum("ki,ij,kj->k", s, J, s)


def test_dense_sparse_and_dict_agree():
    m = random_frustrated(6, 0)
    J = m.dense_J()
    s = all_states(6)
    e = direct_energy(m.h, J, s)
    np.testing.assert_allclose(m.energy(s), e, atol=1e-12)
    m2 = IsingModel(m.h, sp.csr_matrix(J))
    np.testing.assert_allclose(m2.energy(s), e, atol=1e-12)
    hd = {i: m.h[i] for i in range(6)}
    Jd = {(i, j): J[i, j] for i in range(6) for j in range(i + 1, 6) if J[i, j] != 0}
    m3 = IsingModel(hd, Jd)
    np.testing.assert_allclose(m3.energy(s), e, atol=1e-12)


def test_string_labels_and_bqm_roundtrip():
    bqm = dimod.BQM({"a": 0.5, "b": -1.0, "c": 0.0}, {("a", "b"): 1.5, ("b", "c"): -0.7}, 0.25, "SPIN")
    m = IsingModel.from_bqm(bqm)
    assert m.labels == ["a", "b", "c"]
    states = all_states(3)
    np.testing.assert_allclose(m.energy(states), bqm.energies((states, m.labels)), atol=1e-12)
    back = m.to_bqm()
    assert back == bqm


def test_binary_bqm_energies_match():
    rng = np.random.default_rng(1)
    Q = {(i, j): rng.normal() for i in range(5) for j in range(i, 5)}
    bqm = dimod.BQM.from_qubo(Q, offset=1.3)
    m = IsingModel.from_bqm(bqm)
    spins = all_states(5)
    binary = (spins + 1) // 2
    np.testing.assert_allclose(m.energy(spins), bqm.energies((binary, m.labels)), atol=1e-10)


def test_repeated_dict_pairs_add_like_dimod():
    m = IsingModel({0: 0.0, 1: 0.0}, {(0, 1): 1.0, (1, 0): 0.5})
    assert m.dense_J()[0, 1] == 1.5
    bqm = dimod.BQM.from_ising({0: 0.0, 1: 0.0}, {(0, 1): 1.0, (1, 0): 0.5})
    assert bqm.get_quadratic(0, 1) == 1.5


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 30), density=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_core_energy_equals_numpy(n, density, seed):
    rng = np.random.default_rng(seed)
    upper = sp.random(n, n, density=density, random_state=rng, format="csr")
    upper = sp.triu(upper, k=1)
    upper.data = rng.uniform(-2, 2, upper.nnz)
    J = (upper + upper.T).tocsr()
    h = rng.normal(size=n)
    m = IsingModel(h, J)
    s = rng.choice(np.array([-1, 1], dtype=np.int8), size=(17, n))
    np.testing.assert_allclose(m.energy(s), direct_energy(h, J.toarray(), s), rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize(
    "h, J, match",
    [
        (np.zeros(3), np.zeros((3, 2)), "J: expected shape"),
        (np.zeros((3, 1)), np.zeros((3, 3)), "h: expected a 1-D"),
        (np.array([0, np.nan, 0]), np.zeros((3, 3)), "h: contains NaN"),
        (np.zeros(2), np.array([[0, np.inf], [np.inf, 0]]), "J: contains NaN or inf"),
        (np.zeros(2), np.array([[0, 1.0], [0.5, 0]]), "J: couplings must be symmetric"),
        (np.zeros(2), np.array([[1.0, 0], [0, 0]]), "J: diagonal must be zero"),
        (np.zeros(2), sp.csr_matrix(np.array([[0, 1.0], [0.0, 0]])), "J: couplings must be symmetric"),
    ],
)
def test_bad_models_are_refused(h, J, match):
    with pytest.raises(ValueError, match=match):
        IsingModel(h, J)


def test_bad_labels_and_spins():
    with pytest.raises(ValueError, match="labels: duplicate"):
        IsingModel(np.zeros(2), np.zeros((2, 2)), labels=["a", "a"])
    with pytest.raises(ValueError, match="J: diagonal"):
        IsingModel({"a": 0}, {("a", "a"): 1.0})
    m = IsingModel(np.zeros(2), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="spins: values must be -1 or \\+1"):
        m.energy([[0, 1]])
    with pytest.raises(ValueError, match="spins: expected shape"):
        m.energy([[1, 1, 1]])
    with pytest.raises(ValueError, match="beta"):
        m.scaled(0.0)


def test_core_refuses_asymmetric_csr_directly():
    from qbm import _core

    with pytest.raises(ValueError, match="J: couplings must be symmetric"):
        _core.IsingCsr(np.zeros(2), np.array([0, 1, 1]), np.array([1]), np.array([1.0]))
