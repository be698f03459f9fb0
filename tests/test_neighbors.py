"""Tests of alw_ref.neighbors.neighbor_list against a brute-force loop over periodic images.

The brute force is independent of the implementation: it takes lattice coordinates from the
pseudo-inverse of the periodic cell rows (no basis completion, no wrapping, no binning) and loops
over every image S in a box around the pair's own offset, wide enough by the bound
|S_k + Δf_k| <= cutoff / d_k (d_k: lattice-plane distance of the periodic sublattice).
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from alw_ref.errors import DataError
from alw_ref.neighbors import NeighborList, neighbor_list


def brute_force(positions, cell, pbc, cutoff):
    """Dict {(i, j, S0, S1, S2): r_c} of every pair with d < cutoff except (i, i, 0, 0, 0)."""
    positions = np.asarray(positions, dtype=float)
    cell = np.asarray(cell, dtype=float)
    dirs = np.flatnonzero(pbc)
    n_k = np.zeros(3, dtype=int)
    centre_k = np.zeros((len(positions), len(positions), 3))
    if dirs.size:
        dual_ck = np.linalg.pinv(cell[dirs])  # (3, n_periodic): lattice coordinates of a vector
        plane_distance = 1.0 / np.linalg.norm(dual_ck, axis=0)
        frac_ik = positions @ dual_ck
        centre_k[:, :, dirs] = -(frac_ik[None, :, :] - frac_ik[:, None, :])  # S ≈ -(f_j - f_i)
        n_k[dirs] = np.ceil(cutoff / plane_distance).astype(int) + 1
    ranges = [np.arange(-n, n + 1) for n in n_k]
    grid_sk = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 3)
    pairs = {}
    for i in range(len(positions)):
        for j in range(len(positions)):
            shift_sk = grid_sk + np.rint(centre_k[i, j]).astype(int)
            r_sc = positions[j] - positions[i] + shift_sk @ cell
            d_s = np.sqrt((r_sc ** 2).sum(axis=1))
            for s in np.flatnonzero(d_s < cutoff):
                key = (i, j, *shift_sk[s].tolist())
                if key != (i, i, 0, 0, 0):
                    pairs[key] = r_sc[s]
    return pairs


def assert_matches_brute_force(positions, cell, pbc, cutoff):
    nl = neighbor_list(positions, cell, pbc, cutoff)
    expected = brute_force(positions, cell, pbc, cutoff)
    got = {(i, j, *s): n for n, (i, j, s) in enumerate(zip(nl.i_n.tolist(), nl.j_n.tolist(),
                                                             nl.shift_nc.tolist()))}
    assert len(got) == nl.i_n.size, "duplicate (i, j, S) entries"
    assert set(got) == set(expected)
    for key, n in got.items():
        np.testing.assert_allclose(nl.r_nc[n], expected[key], rtol=0, atol=1e-12)
        assert abs(nl.d_n[n] - np.linalg.norm(expected[key])) <= 1e-12
    assert_well_formed(nl, len(positions), pbc, cutoff)
    return nl


def assert_well_formed(nl, n_atoms, pbc, cutoff):
    """dtypes, shapes, CSR offsets, sort order, d < cutoff, S = 0 along non-periodic directions."""
    n_pairs = nl.i_n.size
    for name, dtype, shape in (("i_n", np.int64, (n_pairs,)), ("j_n", np.int64, (n_pairs,)),
                               ("shift_nc", np.int64, (n_pairs, 3)),
                               ("r_nc", np.float64, (n_pairs, 3)), ("d_n", np.float64, (n_pairs,)),
                               ("first_i", np.int64, (n_atoms + 1,))):
        value = getattr(nl, name)
        assert value.dtype == dtype and value.shape == shape, name
    np.testing.assert_array_equal(
        nl.first_i, np.concatenate([[0], np.cumsum(np.bincount(nl.i_n, minlength=n_atoms))]))
    order = np.lexsort((nl.shift_nc[:, 2], nl.shift_nc[:, 1], nl.shift_nc[:, 0], nl.j_n, nl.i_n))
    np.testing.assert_array_equal(order, np.arange(n_pairs))
    assert np.all(nl.d_n < cutoff)
    assert np.all(nl.shift_nc[:, ~np.asarray(pbc, dtype=bool)] == 0)


def random_structure(seed, n_atoms, pbc, tilt, spread, zero_nonperiodic):
    """Random triclinic cell (rows a, b, c, lengths 2-5 Å, off-diagonal tilt up to ``tilt`` times the
    length, random rotation), atoms at fractional coordinates in [-spread, 1 + spread)."""
    rng = np.random.default_rng(seed)
    cell = np.diag(rng.uniform(2.0, 5.0, 3))
    cell += tilt * rng.uniform(-1, 1, (3, 3)) * np.diag(cell)[:, None] * (1 - np.eye(3))
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    cell = cell @ rotation
    positions = rng.uniform(-spread, 1 + spread, (n_atoms, 3)) @ cell
    if zero_nonperiodic:
        cell[~np.asarray(pbc)] = 0.0
    return positions, cell


def min_plane_distance(cell, pbc):
    dirs = np.flatnonzero(pbc)
    if dirs.size == 0:
        return 3.0
    return float((1.0 / np.linalg.norm(np.linalg.pinv(cell[dirs]), axis=0)).min())


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), n_atoms=st.integers(1, 6),
       pbc=st.tuples(st.booleans(), st.booleans(), st.booleans()),
       tilt=st.sampled_from([0.0, 0.3, 1.5]), spread=st.sampled_from([0.0, 1.5]),
       zero_nonperiodic=st.booleans(), cutoff_factor=st.floats(0.2, 2.5))
def test_equals_brute_force_random_triclinic(seed, n_atoms, pbc, tilt, spread, zero_nonperiodic,
                                             cutoff_factor):
    """Random cells (strongly tilted too), pbc flags, unwrapped atoms, cutoffs below and above the
    lattice-plane distance (many images)."""
    positions, cell = random_structure(seed, n_atoms, pbc, tilt, spread, zero_nonperiodic)
    cutoff = cutoff_factor * min_plane_distance(cell, pbc)
    nl = assert_matches_brute_force(positions, cell, pbc, cutoff)
    # Symmetry of the full list: (i, j, S) present iff (j, i, -S) present, with r -> -r.
    forward = {(i, j, *s): r for i, j, s, r in zip(nl.i_n.tolist(), nl.j_n.tolist(),
                                                   nl.shift_nc.tolist(), nl.r_nc)}
    for (i, j, s0, s1, s2), r in forward.items():
        np.testing.assert_allclose(forward[(j, i, -s0, -s1, -s2)], -r, rtol=0, atol=1e-12)


def test_cutoff_well_above_cell_many_images():
    """Cutoff 4.5x the shortest plane distance of a tilted cell: hundreds of images per pair, more
    pairs per atom than the scan buffer's initial room (64 per atom), so the buffer must grow."""
    positions, cell = random_structure(7, 3, (True, True, True), 0.8, 0.5, False)
    cutoff = 4.5 * min_plane_distance(cell, (True, True, True))
    nl = assert_matches_brute_force(positions, cell, (True, True, True), cutoff)
    assert nl.i_n.size > 64 * 7 + 64


def test_isolated_molecule_zero_cell():
    rng = np.random.default_rng(1)
    positions = rng.uniform(-3, 3, (8, 3)) + 1000.0
    nl = assert_matches_brute_force(positions, np.zeros((3, 3)), (False, False, False), 3.0)
    assert np.all(nl.shift_nc == 0)
    diffs = positions[None] - positions[:, None]
    n_close = int(((np.linalg.norm(diffs, axis=2) < 3.0) & ~np.eye(8, dtype=bool)).sum())
    assert nl.i_n.size == n_close > 0


def test_single_atom_simple_cubic_images_of_itself():
    """One atom in a cube of side 2 Å: with cutoff 2.5 Å the 6 face neighbours (d = 2) are its own
    images; edge images (d = 2√2 ≈ 2.83) are out."""
    nl = neighbor_list(np.array([[0.3, -0.7, 5.1]]), 2.0 * np.eye(3), (True, True, True), 2.5)
    assert nl.i_n.tolist() == [0] * 6 and nl.j_n.tolist() == [0] * 6
    expected = sorted(tuple(int(v) for v in s) for s in np.concatenate([np.eye(3), -np.eye(3)]))
    assert sorted(map(tuple, nl.shift_nc.tolist())) == expected
    np.testing.assert_allclose(nl.d_n, 2.0, rtol=0, atol=1e-12)
    # Just above 2√2: the 12 edge images join.
    assert neighbor_list(np.zeros((1, 3)), 2.0 * np.eye(3), (True, True, True), 2.9).i_n.size == 18


def test_slab_with_vacuum():
    """2D periodic slab: c is non-periodic (20 Å vacuum or zero) — no shift along c."""
    rng = np.random.default_rng(3)
    cell = np.array([[3.1, 0.0, 0.0], [1.55, 2.68, 0.0], [0.0, 0.0, 20.0]])
    positions = rng.uniform(0, 1, (6, 3)) @ np.diag([3.0, 2.6, 4.0]) + [0, 0, 8.0]
    pbc = (True, True, False)
    nl = assert_matches_brute_force(positions, cell, pbc, 5.0)
    nl_zero_c = assert_matches_brute_force(positions, cell * [[1], [1], [0]], pbc, 5.0)
    np.testing.assert_array_equal(nl.shift_nc, nl_zero_c.shift_nc)
    np.testing.assert_array_equal(nl.r_nc, nl_zero_c.r_nc)


def test_degenerate_nonperiodic_vector_is_ignored():
    """A non-periodic row parallel to a periodic one is allowed and does not change the result."""
    positions, cell = random_structure(11, 5, (True, False, False), 0.3, 0.3, False)
    degenerate = cell.copy()
    degenerate[1] = 2.0 * cell[0]
    degenerate[2] = 0.0
    a = assert_matches_brute_force(positions, cell, (True, False, False), 4.0)
    b = assert_matches_brute_force(positions, degenerate, (True, False, False), 4.0)
    np.testing.assert_array_equal(a.shift_nc, b.shift_nc)


def test_empty_result_and_no_atoms():
    nl = neighbor_list(np.array([[0.0, 0, 0], [5.0, 0, 0]]), np.zeros((3, 3)), (False,) * 3, 1.0)
    assert nl.i_n.size == 0 and nl.r_nc.shape == (0, 3) and nl.first_i.tolist() == [0, 0, 0]
    assert_well_formed(nl, 2, (False,) * 3, 1.0)
    nl = neighbor_list(np.zeros((0, 3)), 4.0 * np.eye(3), (True,) * 3, 3.0)
    assert nl.first_i.tolist() == [0] and nl.shift_nc.shape == (0, 3)


def test_coincident_atoms_listed_with_zero_distance():
    nl = neighbor_list(np.array([[1.0, 1, 1], [1.0, 1, 1]]), np.zeros((3, 3)), (False,) * 3, 1.0)
    assert list(zip(nl.i_n.tolist(), nl.j_n.tolist())) == [(0, 1), (1, 0)]
    assert nl.d_n.tolist() == [0.0, 0.0]


def test_shifting_an_atom_by_a_lattice_vector_moves_only_shifts():
    """Translating atom 2 by m @ cell: same distances; S of pairs with centre 2 gains +m, S of
    pairs with neighbour 2 gains -m (r is computed from the positions as given)."""
    pbc = (True, True, True)
    positions, cell = random_structure(5, 4, pbc, 0.5, 0.0, False)
    m = np.array([3, -2, 7])
    moved = positions.copy()
    moved[2] += m @ cell
    a = neighbor_list(positions, cell, pbc, 5.0)
    b = neighbor_list(moved, cell, pbc, 5.0)
    expected = {}
    for i, j, s, r in zip(a.i_n.tolist(), a.j_n.tolist(), a.shift_nc, a.r_nc):
        s = s + (m if i == 2 else 0) - (m if j == 2 else 0)
        expected[(i, j, *s.tolist())] = r
    got = {(i, j, *s): r for i, j, s, r in zip(b.i_n.tolist(), b.j_n.tolist(),
                                               b.shift_nc.tolist(), b.r_nc)}
    assert set(got) == set(expected)
    for key, r in got.items():
        np.testing.assert_allclose(r, expected[key], rtol=0, atol=1e-12)


def test_atoms_many_cells_away_from_the_cell():
    """Each atom displaced by up to ±100 lattice vectors along the periodic directions: the shifts
    compensate, r is still computed from the positions as given."""
    pbc = (True, False, True)
    positions, cell = random_structure(13, 6, pbc, 1.0, 0.0, False)
    rng = np.random.default_rng(13)
    positions += (rng.integers(-100, 101, (6, 3)) * np.asarray(pbc)) @ cell
    nl = assert_matches_brute_force(positions, cell, pbc, 1.7 * min_plane_distance(cell, pbc))
    assert np.abs(nl.shift_nc).max() > 50


def test_sparse_molecule_in_huge_region():
    """Two clusters 1e6 Å apart: binary-searched bins keep this cheap and exact."""
    rng = np.random.default_rng(9)
    positions = np.concatenate([rng.uniform(0, 4, (5, 3)), rng.uniform(0, 4, (5, 3)) + 1e6])
    assert_matches_brute_force(positions, np.zeros((3, 3)), (False,) * 3, 2.5)


def test_accepts_integer_pbc_and_list_inputs():
    nl = neighbor_list([[0.0, 0.0, 0.0]], [[2.0, 0, 0], [0, 2.0, 0], [0, 0, 2.0]], [1, 0, 0], 2.5)
    assert isinstance(nl, NeighborList)
    assert sorted(nl.shift_nc[:, 0].tolist()) == [-1, 1]


GOOD = dict(positions=np.zeros((2, 3)) + [[0, 0, 0], [1, 0, 0]], cell=3.0 * np.eye(3),
            pbc=(True, True, True), cutoff=2.0)


@pytest.mark.parametrize("field, value, message", [
    ("positions", np.zeros(3), r"'positions': expected shape \(n_atoms, 3\)"),
    ("positions", np.zeros((2, 2)), r"'positions': expected shape"),
    ("positions", np.array([[0, 0, 0], [np.nan, 0, 0]]), r"non-finite coordinates of atom\(s\) \[1\]"),
    ("cell", np.eye(2), r"'cell': expected shape \(3, 3\)"),
    ("cell", np.diag([3.0, np.inf, 3.0]), r"'cell': non-finite"),
    ("pbc", (True, True), r"'pbc': expected 3 booleans"),
    ("pbc", (2, 0, 0), r"'pbc': expected 3 booleans"),
    ("cutoff", 0.0, r"'cutoff': must be finite and > 0"),
    ("cutoff", -1.0, r"'cutoff': must be finite and > 0"),
    ("cutoff", math.nan, r"'cutoff': must be finite and > 0"),
    ("cutoff", "3", r"'cutoff': expected a real number"),
    ("cell", np.diag([3.0, 0.0, 3.0]), r"periodic cell vector 1 is zero"),
    ("cell", np.array([[3.0, 0, 0], [0, 3, 0], [6.0, 0, 0]]),
     r"periodic cell vectors 0 and 2 are linearly dependent"),
    ("cell", np.array([[3.0, 0, 0], [0, 3, 0], [3.0, 3.0, 0]]),
     r"periodic cell vectors 0, 1 and 2 are linearly dependent"),
])
def test_bad_input_raises_naming_the_field(field, value, message):
    with pytest.raises(DataError, match=message):
        neighbor_list(**{**GOOD, field: value})


def test_dependent_vectors_allowed_when_not_periodic():
    cell = np.array([[3.0, 0, 0], [0, 3, 0], [6.0, 0, 0]])
    nl = neighbor_list(GOOD["positions"], cell, (True, True, False), 2.0)
    assert_well_formed(nl, 2, (True, True, False), 2.0)


def test_too_many_images_raises():
    with pytest.raises(DataError, match="periodic images"):
        neighbor_list(np.zeros((1, 3)), np.diag([1e-4, 1e-4, 1e-4]), (True,) * 3, 10.0)
