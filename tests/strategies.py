"""Hypothesis strategies for random structures (reusable by any test module).

``structures()`` draws a triclinic cell that is not too skewed (lengths 2.6–4.5 Å, angles 65°–115°,
volume ≥ 0.6·abc), random pbc flags, 1–3 elements and atoms placed by rejection sampling so that
every interatomic distance, periodic images included, is ≥ ``min_distance`` (checked by brute force
over images). Positions are drawn from a NumPy generator seeded by hypothesis (reproducible).

Draws exercise the descriptors (issue 14: many draws used to be single atoms or atoms without
neighbours, whose finite-difference checks compare zeros): atoms grow as a cluster, each new one at
min_distance … ``reach`` Å from an earlier one, so every atom has a neighbour within ``reach`` (a lone
atom needs a periodic image within ``reach``, else the draw is rejected); the atoms cycle through the
drawn elements before repeating one, so a structure of n atoms holds min(n, n_elements) elements.
"""

import math
from types import SimpleNamespace

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from acsf_reference import brute_force_neighbor_list

ELEMENTS = (42, 52, 16)   # Mo, Te, S


def cell_from_parameters(a, b, c, alpha, beta, gamma):
    """Rows a, b, c of a cell from lengths (Å) and angles (degrees), a along x, b in the xy plane."""
    al, be, ga = (math.radians(x) for x in (alpha, beta, gamma))
    bx, by = b * math.cos(ga), b * math.sin(ga)
    cx = c * math.cos(be)
    cy = c * (math.cos(al) - math.cos(be) * math.cos(ga)) / math.sin(ga)
    cz2 = c * c - cx * cx - cy * cy
    if cz2 <= 0:
        return None
    return np.array([[a, 0.0, 0.0], [bx, by, 0.0], [cx, cy, math.sqrt(cz2)]])


@st.composite
def cells(draw, length=(2.6, 4.5), angle=(65.0, 115.0), min_volume_ratio=0.6):
    """(3, 3) float64 Å cell, rows are lattice vectors, randomly rotated."""
    lengths = [draw(st.floats(*length)) for _ in range(3)]
    angles = [draw(st.floats(*angle)) for _ in range(3)]
    cell = cell_from_parameters(*lengths, *angles)
    assume(cell is not None and abs(np.linalg.det(cell)) >= min_volume_ratio * np.prod(lengths))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    rot = q * np.sign(np.diag(r))
    if np.linalg.det(rot) < 0:
        rot[:, 0] *= -1
    return cell @ rot.T


def away_from_cutoff(s, rc, margin=1e-3):
    """No pair distance (images included) within ``margin`` Å of rc: FD steps never cross R_c, where
    f_c has a jump in its second derivative (this also covers R_jk, itself a pair distance)."""
    d = brute_force_neighbor_list(s.positions, s.cell, s.pbc, rc + margin).d_n
    return not np.any(np.abs(d - rc) < margin)


def min_distance_ok(positions, cell, pbc, min_distance):
    """True when every distance, periodic images included, is ≥ min_distance."""
    return len(brute_force_neighbor_list(positions, cell, pbc, min_distance).d_n) == 0


def has_neighbours(positions, cell, pbc, reach):
    """True when every atom has another atom or a periodic image within ``reach`` Å."""
    nl = brute_force_neighbor_list(positions, cell, pbc, reach)
    return bool(np.all(np.diff(nl.first_i) > 0))


@st.composite
def structures(draw, n_atoms=(1, 5), n_elements=(2, 3), min_distance=0.9, pbc=None, elements=ELEMENTS,
               reach=3.5):
    """SimpleNamespace(numbers (n,) int64, positions (n, 3) float64 Å, cell (3, 3) float64 Å,
    pbc (3,) bool, elements tuple of the Z the spec should cover (may be absent from numbers)).
    Every atom has a neighbour (periodic images included) within ``reach`` Å (module docstring)."""
    cell = draw(cells())
    if pbc is None:
        pbc = tuple(draw(st.booleans()) for _ in range(3))
    n_el = draw(st.integers(*n_elements))
    els = tuple(elements[:n_el])
    n = draw(st.integers(*n_atoms))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    positions = np.zeros((0, 3))
    for _ in range(50 * n):
        if len(positions) == n:
            break
        if len(positions) == 0:
            new = rng.random(3) @ cell
        else:
            direction = rng.normal(size=3)
            new = (positions[rng.integers(len(positions))]
                   + direction / np.linalg.norm(direction) * rng.uniform(min_distance, reach))
        trial = np.vstack([positions, new])
        if min_distance_ok(trial, cell, pbc, min_distance):
            positions = trial
    assume(len(positions) == n and has_neighbours(positions, cell, pbc, reach))
    numbers = np.array([els[k % n_el] for k in rng.permutation(n)], np.int64)
    return SimpleNamespace(numbers=numbers, positions=positions, cell=cell, pbc=np.array(pbc, bool),
                           elements=els)
