"""Slow, independent pure-Python ACSF reference (tests only): brute force over periodic images.

Straight from the formulas of Behler, JCP 134, 074106 (2011) as specified in issue 2 (see the
docstring of alw_ref/acsf.py for the conventions this must share: k > j counts each unordered pair
of neighbours once; (1 + λ cos θ) clipped at 0, and a base ≤ B_COLLINEAR = 1e-24 counted as 0).
cos θ is computed the textbook way, r_ij·r_ik / (R_ij R_ik), and 1 − |cos θ| as sin²θ / (1 + |cos θ|)
with sin θ = |r_ij × r_ik| / (R_ij R_ik) (accurate near collinearity, where 1 − |cos θ| has an error of
±1e-16) — deliberately not as in the kernel (½|û_ij + λ û_ik|²). No NumPy vectorisation, no Numba.

``brute_force_neighbor_list`` returns the same fields as alw_ref.neighbors.NeighborList.
"""

import itertools
import math
from types import SimpleNamespace

import numpy as np


def image_range(positions, cell, pbc, cutoff):
    """Per-direction maximum |shift| that can bring any atom within ``cutoff`` of any other."""
    positions = np.asarray(positions, float)
    n_max = [0, 0, 0]
    if any(pbc):
        periodic = [a for a in range(3) if pbc[a]]
        # fractional coordinates along periodic directions (complete the basis for the others)
        basis = np.array(cell, float)
        for a in range(3):
            if not pbc[a]:
                basis[a] = 0.0
        inv = np.linalg.pinv(basis)
        frac = positions @ inv
        for a in periodic:
            plane_spacing = 1.0 / np.linalg.norm(inv[:, a])
            span = frac[:, a].max() - frac[:, a].min()
            n_max[a] = int(math.ceil(cutoff / plane_spacing + span)) + 1
    return n_max


def brute_force_neighbor_list(positions, cell, pbc, cutoff):
    """All (i, j, S) with 0 < |r_j − r_i + S·cell| < cutoff, except i == j with S == 0, sorted by i, j, S."""
    positions = [list(map(float, p)) for p in positions]
    cell = [list(map(float, v)) for v in cell]
    n_max = image_range(positions, cell, pbc, cutoff)
    shifts = list(itertools.product(*[range(-m, m + 1) for m in n_max]))
    rows = []
    for i, ri in enumerate(positions):
        for j, rj in enumerate(positions):
            for S in shifts:
                if i == j and S == (0, 0, 0):
                    continue
                r = [rj[c] - ri[c] + sum(S[a] * cell[a][c] for a in range(3)) for c in range(3)]
                d = math.sqrt(sum(x * x for x in r))
                if d < cutoff:
                    rows.append((i, j, S, r, d))
    rows.sort(key=lambda t: (t[0], t[1], t[2]))
    n = len(positions)
    first_i = [0] * (n + 1)
    for i, *_ in rows:
        first_i[i + 1] += 1
    for i in range(n):
        first_i[i + 1] += first_i[i]
    return SimpleNamespace(
        i_n=np.array([t[0] for t in rows], np.int64), j_n=np.array([t[1] for t in rows], np.int64),
        shift_nc=np.array([t[2] for t in rows], np.int64).reshape(-1, 3),
        r_nc=np.array([t[3] for t in rows], float).reshape(-1, 3),
        d_n=np.array([t[4] for t in rows], float), first_i=np.array(first_i, np.int64))


def fc(R, rc):
    return 0.5 * (math.cos(math.pi * R / rc) + 1.0) if R <= rc else 0.0


#: The collinearity convention of alw_ref.acsf (written out, not imported): bases at or below are 0.
B_COLLINEAR = 1e-24


def angular_base(rij, rik, lam):
    """1 + λ cos θ clipped at 0, from the dot product (λ cos θ ≥ 0) or the cross product (λ cos θ < 0)."""
    Rij, Rik = math.dist(rij, (0, 0, 0)), math.dist(rik, (0, 0, 0))
    cos = sum(x * y for x, y in zip(rij, rik)) / (Rij * Rik)
    if lam * cos >= 0.0:
        return 1.0 + abs(cos)
    cx = rij[1] * rik[2] - rij[2] * rik[1]
    cy = rij[2] * rik[0] - rij[0] * rik[2]
    cz = rij[0] * rik[1] - rij[1] * rik[0]
    sin2 = (cx * cx + cy * cy + cz * cz) / (Rij * Rik) ** 2
    base = sin2 / (1.0 + abs(cos))
    return 0.0 if base <= B_COLLINEAR else base


def reference_acsf(spec, numbers, positions, cell, pbc):
    """G (n_atoms, D) as nested Python loops over a brute-force neighbour list, feature order of the spec."""
    nl = brute_force_neighbor_list(positions, cell, pbc, spec.rc)
    sp = {z: k for k, z in enumerate(spec.elements)}
    n_el = len(spec.elements)
    pairs = [(a, b) for a in range(n_el) for b in range(a, n_el)]
    labels_out = []
    rc = spec.rc
    for i in range(len(numbers)):
        neigh = [(int(nl.j_n[p]), list(nl.r_nc[p])) for p in range(nl.first_i[i], nl.first_i[i + 1])]
        g2 = {(e, p): 0.0 for e in range(n_el) for p in range(len(spec.radial))}
        g4 = {(q, p): 0.0 for q in pairs for p in range(len(spec.angular))}
        g5 = {(q, p): 0.0 for q in pairs for p in range(len(spec.angular_g5))}
        for j, rij in neigh:
            Rij = math.dist(rij, (0, 0, 0))
            for p, (eta, rs) in enumerate(spec.radial):
                g2[(sp[numbers[j]], p)] += math.exp(-eta * (Rij - rs) ** 2) * fc(Rij, rc)
        for a in range(len(neigh)):
            for b in range(a + 1, len(neigh)):          # k > j: each unordered pair once
                (j, rij), (k, rik) = neigh[a], neigh[b]
                Rij, Rik = math.dist(rij, (0, 0, 0)), math.dist(rik, (0, 0, 0))
                Rjk = math.dist(rij, rik)
                q = tuple(sorted((sp[numbers[j]], sp[numbers[k]])))
                for p, (eta, zeta, lam) in enumerate(spec.angular):
                    base = angular_base(rij, rik, lam)
                    g4[(q, p)] += (2.0 ** (1 - zeta) * base ** zeta
                                   * math.exp(-eta * (Rij ** 2 + Rik ** 2 + Rjk ** 2))
                                   * fc(Rij, rc) * fc(Rik, rc) * fc(Rjk, rc))
                for p, (eta, zeta, lam) in enumerate(spec.angular_g5):
                    base = angular_base(rij, rik, lam)
                    g5[(q, p)] += (2.0 ** (1 - zeta) * base ** zeta * math.exp(-eta * (Rij ** 2 + Rik ** 2))
                                   * fc(Rij, rc) * fc(Rik, rc))
        row = [g2[(e, p)] for e in range(n_el) for p in range(len(spec.radial))]
        row += [g4[(q, p)] for q in pairs for p in range(len(spec.angular))]
        row += [g5[(q, p)] for q in pairs for p in range(len(spec.angular_g5))]
        labels_out.append(row)
    return np.array(labels_out, float).reshape(len(numbers), spec.n_features)
