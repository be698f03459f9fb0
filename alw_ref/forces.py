"""Forces (paper Eq. 2), stress (paper Eq. 3 / Appendix A) and their adjoint, as sparse contractions.

Inputs are the descriptor derivatives of ``acsf``/``describe`` (global atom indices over a dataset)
and the energy gradient in descriptor space, dE_dG_ig[i, g] = ∂E_i/∂G_ig (eV per unit G), for a
*batch*: a list of whole structures whose atoms are numbered 0 … n-1 in batch order. Per batch atom:

    gidx_i  (n,) int64   global index of the atom in the descriptor arrays
    shift_i (n,) int64   batch index − global index of the first atom of its structure, so the batch
                         index of a neighbour block's atom is block_j[b] + shift_i[i]
    boff_i  (n+1,) int64 offsets of the atom's derivative blocks in a batch-local block numbering

Forces, Eq. 2:  F_j = −Σ_i Σ_g (∂E_i/∂G_ig) ∂G_ig/∂r_j   (eV/Å), over every block (i, j), j = i included.
Virial, Eq. 3:  W_i,ab = Σ_g (∂E_i/∂G_ig) ∂G_ig/∂ε_ab     (eV);  σ_ab = (1/V) Σ_{i∈structure} W_i,ab.
The sign: under the homogeneous deformation r → (I+ε) r, ∂E/∂ε_ab = Σ_i Σ_g (∂E_i/∂G_ig) ∂G_ig/∂ε_ab,
so σ = (1/V) ∂E/∂ε is ASE's stress (tension positive) in eV/Å³. The paper's Eq. 3 writes the same sum
as σ = (1/V) Σ_i Σ_{j∈N(i)} r_ij ⊗ ∂E_i/∂r_ij over neighbour vectors: ∂G_i/∂ε_ab = Σ_n (∂G_i/∂r_n^a) r_n^b
is exactly that sum (see ``acsf``). VASP prints −σ (positive = compressive), in kbar.

Adjoint (for the training gradient): given F̄_j = ∂L/∂F_j (units of L per eV/Å) and
Ŵ_i = (∂L/∂σ of the atom's structure)/V (L per eV), the loss depends on ∂E_i/∂G_i through

    v_ig = ∂L/∂(∂E_i/∂G_ig) = −Σ_{b∈i} Σ_c ∂G_ig/∂r_{j_b,c} F̄_{j_b,c} + Σ_ab ∂G_ig/∂ε_ab Ŵ_i,ab.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

# OpenMP workers (Numba's threading layer, libgomp) busy-wait for ~300 000 spins after each parallel
# region by default. Between the fused kernel and the MLP's NumPy code that spinning takes the core the
# main thread needs: at 2 threads on the 2-core machine, the MLP ran 3x slower and the training step 1.6-2.5x
# (issue 15, benchmarks/README.md). Our parallel regions are few and long, so sleeping workers cost
# nothing measurable. Read when libgomp starts (Numba's first parallel call); a value set by the user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402


@njit(cache=True, parallel=True)
def _block_forces_kernel(dE_dG_ig, gidx_i, boff_i, block_first_i, dG_dr_bgc, dG_deps_igcc):
    """Per-block force terms c_b = Σ_g dE_dG[i,g] dG_dr[b,g,:] (eV/Å) and per-atom virials (eV)."""
    n, D = dE_dG_ig.shape
    c_bc = np.zeros((boff_i[n], 3))
    W_icc = np.zeros((n, 3, 3))
    for i in prange(n):
        gi = gidx_i[i]
        b0 = block_first_i[gi]
        for k in range(block_first_i[gi + 1] - b0):
            b = b0 + k
            bl = boff_i[i] + k
            for g in range(D):
                w = dE_dG_ig[i, g]
                for c in range(3):
                    c_bc[bl, c] += w * dG_dr_bgc[b, g, c]
        for g in range(D):
            w = dE_dG_ig[i, g]
            for a in range(3):
                for c in range(3):
                    W_icc[i, a, c] += w * dG_deps_igcc[gi, g, a, c]
    return c_bc, W_icc


@njit(cache=True)
def _scatter_forces_kernel(c_bc, gidx_i, shift_i, boff_i, block_first_i, block_j):
    """F_j = −Σ_b c_b over blocks whose atom is j (serial scatter; blocks of one atom can collide)."""
    n = gidx_i.shape[0]
    F_ic = np.zeros((n, 3))
    for i in range(n):
        gi = gidx_i[i]
        b0 = block_first_i[gi]
        for k in range(block_first_i[gi + 1] - b0):
            j = block_j[b0 + k] + shift_i[i]
            for c in range(3):
                F_ic[j, c] -= c_bc[boff_i[i] + k, c]
    return F_ic


@njit(cache=True, parallel=True)
def _adjoint_kernel(Fbar_ic, What_icc, gidx_i, shift_i, block_first_i, block_j, dG_dr_bgc, dG_deps_igcc):
    """v_ig = −Σ_b Σ_c dG_dr[b,g,c] F̄[j_b,c] + Σ_ab dG_deps[i,g,a,b] Ŵ[i,a,b] (module docstring)."""
    n = gidx_i.shape[0]
    D = dG_dr_bgc.shape[1]
    v_ig = np.zeros((n, D))
    for i in prange(n):
        gi = gidx_i[i]
        for b in range(block_first_i[gi], block_first_i[gi + 1]):
            j = block_j[b] + shift_i[i]
            f0, f1, f2 = Fbar_ic[j, 0], Fbar_ic[j, 1], Fbar_ic[j, 2]
            for g in range(D):
                v_ig[i, g] -= dG_dr_bgc[b, g, 0] * f0 + dG_dr_bgc[b, g, 1] * f1 + dG_dr_bgc[b, g, 2] * f2
        for g in range(D):
            s = 0.0
            for a in range(3):
                for c in range(3):
                    s += dG_deps_igcc[gi, g, a, c] * What_icc[i, a, c]
            v_ig[i, g] += s
    return v_ig


def block_offsets(gidx_i: np.ndarray, block_first_i: np.ndarray) -> np.ndarray:
    """Batch-local block offsets boff_i (n+1,) of the atoms gidx_i (module docstring)."""
    counts = block_first_i[gidx_i + 1] - block_first_i[gidx_i]
    return np.concatenate(([0], np.cumsum(counts))).astype(np.int64)


def forces_and_virials(dE_dG_ig, gidx_i, shift_i, block_first_i, block_j, dG_dr_bgc, dG_deps_igcc):
    """Paper Eq. 2 forces F (n, 3) eV/Å and per-atom virials W (n, 3, 3) eV of a batch.

    dE_dG_ig : (n, D) ∂E_i/∂G_ig in eV; other arrays as in the module docstring. The stress of a
    structure is (1/V) Σ_i W_i over its atoms (Eq. 3), in eV/Å³ (ASE sign).
    """
    boff_i = block_offsets(gidx_i, block_first_i)
    c_bc, W_icc = _block_forces_kernel(dE_dG_ig, gidx_i, boff_i, block_first_i, dG_dr_bgc, dG_deps_igcc)
    F_ic = _scatter_forces_kernel(c_bc, gidx_i, shift_i, boff_i, block_first_i, block_j)
    return F_ic, W_icc


def descriptor_adjoint(Fbar_ic, What_icc, gidx_i, shift_i, block_first_i, block_j, dG_dr_bgc, dG_deps_igcc):
    """v (n, D) = ∂L/∂(∂E_i/∂G_i) from ∂L/∂F (n, 3) and Ŵ_i = (∂L/∂σ_structure)/V (n, 3, 3)."""
    return _adjoint_kernel(np.ascontiguousarray(Fbar_ic, dtype=np.float64),
                           np.ascontiguousarray(What_icc, dtype=np.float64),
                           gidx_i, shift_i, block_first_i, block_j, dG_dr_bgc, dG_deps_igcc)


# ---------------------------------------------------------------- block layouts read by the fused pass (issue 15)
#
# The fused pass reads blocks through a layout. Block b, of centre i and atom j (global numbering), has
# d_bck[b, c, k] = ∂G_i,g/∂r_j,c for the feature g = feature_ek[el_b[b], k], k < Dc: Cartesian component
# before feature, so that both the force sum over features and the adjoint update run over contiguous
# memory (SIMD). The stored format seen through this layout is a strided view with one row set, all D
# features, grouped by centre: block b of centre i is one of first_i[i]:first_i[i+1], its atom j_b[b].
# The compact layout is grouped by atom instead (neighbour-major): the blocks of atom j are
# first_i[j]:first_i[j+1], in centre order, their centres centre_b[b] (issue 15: one read per step).
# The compact layout also drops rows that are zero by construction: a neighbour j of element e changes only
# the radial features of e and the angular features of pairs that contain e (Dc = 28 of D = 50 for the
# benchmark spec, 22 of 36 for the paper's MoTe2 preset). The block j = i is stored as one piece per
# element (rows of piece e: the features whose first row set is e, others zero). The row sets come
# from the spec (or the data) and every dropped entry is checked to be exactly zero: lossless.


@dataclass(frozen=True)
class BlockLayout:
    """Descriptor-derivative blocks as the fused kernel reads them (comment above).

    first_i (N+1,) int64: offsets of the block groups, one group per atom; j_b (B,) int64; el_b (B,) int8;
    d_bck (B, 3, Dc) float64 (or float32, training only) Å⁻¹; feature_ek (n_sets, Dc) int64;
    centre_b (B,) int64 or empty. Centre-major (centre_b empty, the stored blocks): group i holds the
    blocks ∂G_i/∂r_{j_b}. Neighbour-major (the compact copy): group j holds the blocks ∂G_{centre_b}/∂r_j
    (j_b = j), in centre order, so the fused pass reads each block once (``_structure_forces_adjoint``)."""

    first_i: np.ndarray
    j_b: np.ndarray
    el_b: np.ndarray
    d_bck: np.ndarray
    feature_ek: np.ndarray
    centre_b: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def by_neighbour(self) -> bool:
        """True when the groups are the blocks' atoms j (centre_b set), False when they are the centres."""
        return len(self.centre_b) > 0

    @property
    def nbytes(self) -> int:
        """Bytes of the layout's arrays."""
        return sum(a.nbytes for a in (self.first_i, self.j_b, self.el_b, self.d_bck, self.feature_ek, self.centre_b))


def stored_layout(block_first_i, block_j, dG_dr_bgc) -> BlockLayout:
    """The stored blocks as a layout (a strided view, one row set with all D features)."""
    D = dG_dr_bgc.shape[1]
    return BlockLayout(block_first_i, block_j, np.zeros(len(block_j), np.int8), dG_dr_bgc.transpose(0, 2, 1),
                       np.arange(D, dtype=np.int64)[None, :])


@njit(cache=True)
def _nonzero_rows_kernel(block_first_i, block_j, species_i, dG_dr_bgc, n_el):
    """mask[e, g]: row g is nonzero in some block (i, j ≠ i) with j of element e; mask[n_el]: in a block j = i."""
    D = dG_dr_bgc.shape[1]
    mask = np.zeros((n_el + 1, D), np.bool_)
    for i in range(block_first_i.shape[0] - 1):
        for b in range(block_first_i[i], block_first_i[i + 1]):
            j = block_j[b]
            e = n_el if j == i else species_i[j]
            for g in range(D):
                if dG_dr_bgc[b, g, 0] != 0.0 or dG_dr_bgc[b, g, 1] != 0.0 or dG_dr_bgc[b, g, 2] != 0.0:
                    mask[e, g] = True
    return mask


@njit(cache=True, parallel=True)
def _fill_compact_kernel(block_first_i, block_j, species_i, dG_dr_bgc, feature_ek, n_feat_e, owner_g, first_c,
                         dest_c, j_c, el_c, centre_c, d_c):
    """Compact pieces in centre order (position pos: self pieces first, then the blocks j ≠ i), each written
    at dest_c[pos] (its neighbour-major place)."""
    n_el = feature_ek.shape[0]
    for i in prange(block_first_i.shape[0] - 1):
        pos = first_c[i]
        self_b = -1
        for b in range(block_first_i[i], block_first_i[i + 1]):
            if block_j[b] == i:
                self_b = b
        for e in range(n_el):
            q = dest_c[pos]
            j_c[q] = i
            el_c[q] = e
            centre_c[q] = i
            if self_b >= 0:
                for k in range(n_feat_e[e]):
                    g = feature_ek[e, k]
                    if owner_g[g] == e:
                        for c in range(3):
                            d_c[q, c, k] = dG_dr_bgc[self_b, g, c]
            pos += 1
        for b in range(block_first_i[i], block_first_i[i + 1]):
            j = block_j[b]
            if j == i:
                continue
            e = species_i[j]
            q = dest_c[pos]
            j_c[q] = j
            el_c[q] = e
            centre_c[q] = i
            for k in range(n_feat_e[e]):
                g = feature_ek[e, k]
                for c in range(3):
                    d_c[q, c, k] = dG_dr_bgc[b, g, c]
            pos += 1


def _neighbour_major_places(block_first_i, block_j, first_c, n_elements: int) -> np.ndarray:
    """dest (B_c,): the neighbour-major place of every compact piece numbered in centre order (the self
    pieces of centre i at first_c[i] + e, then its blocks j ≠ i): grouped by atom j, in centre order."""
    n_atoms = len(block_first_i) - 1
    atom_of_block = np.repeat(np.arange(n_atoms), np.diff(block_first_i))
    other = block_j != atom_of_block
    j_c = np.empty(first_c[-1], np.int64)
    j_c[(first_c[:-1, None] + np.arange(n_elements)).ravel()] = np.repeat(np.arange(n_atoms), n_elements)
    rank = np.cumsum(other) - 1  # rank of each block j ≠ i among all of them ...
    before = np.concatenate(([0], np.cumsum(np.bincount(atom_of_block[other], minlength=n_atoms))))
    idx = np.flatnonzero(other)  # ... and within its centre
    j_c[first_c[atom_of_block[idx]] + n_elements + rank[idx] - before[atom_of_block[idx]]] = block_j[idx]
    dest = np.empty_like(j_c)
    dest[np.argsort(j_c, kind="stable")] = np.arange(len(j_c))
    return dest


def compact_layout(block_first_i, block_j, dG_dr_bgc, species_i, n_elements: int, dtype=np.float64, rows_e=None):
    """The compact layout (comment above) of stored blocks, or None if a self-block row is not accounted
    for by any neighbour element (not expected). species_i (N,): species index of every atom of the
    descriptor arrays. With one element no row is dropped and the copy only reorders the blocks.
    ``dtype`` float32 rounds every entry to 2⁻²⁴ relative (training only; the default keeps float64).
    rows_e: the row sets [features that a neighbour of element e can change] (e.g. from the spec), so
    that every subset of a dataset gets the same layout and the same arithmetic; None: found from the
    data. Either way the rows outside them are checked to be zero (else None is returned)."""
    species_i = np.ascontiguousarray(species_i, np.int64)
    found = _nonzero_rows_kernel(block_first_i, block_j, species_i, dG_dr_bgc, n_elements)
    if rows_e is None:
        rows = [np.flatnonzero(found[e]) for e in range(n_elements)]
        mask = found
    else:
        rows = [np.asarray(r, np.int64) for r in rows_e]
        mask = np.zeros_like(found)
        for e, r in enumerate(rows):
            mask[e, r] = True
        if np.any(found[:n_elements] & ~mask[:n_elements]):
            return None  # a nonzero row outside the given sets: keep the stored layout
    covered = np.any(mask[:n_elements], axis=0)
    if np.any(found[n_elements] & ~covered):
        return None  # a self-block row no neighbour element accounts for: keep the stored layout
    Dc = max(1, max(len(r) for r in rows))  # all-zero blocks (isolated atoms): one zero row
    n_atoms = len(block_first_i) - 1
    feature_ek = np.zeros((n_elements, Dc), np.int64)
    for e, r in enumerate(rows):
        feature_ek[e, :len(r)] = r
        feature_ek[e, len(r):] = r[-1] if len(r) else 0
    owner_g = np.where(covered, np.argmax(mask[:n_elements], axis=0), -1).astype(np.int64)
    counts = np.diff(block_first_i)
    has_self = np.zeros(n_atoms, bool)
    atom_of_block = np.repeat(np.arange(n_atoms), counts)
    has_self[atom_of_block[block_j == atom_of_block]] = True
    first_c = np.concatenate(([0], np.cumsum(counts - has_self + n_elements))).astype(np.int64)
    dest_c = _neighbour_major_places(block_first_i, block_j, first_c, n_elements)
    j_c = np.empty(first_c[-1], np.int64)
    el_c = np.empty(first_c[-1], np.int8)
    centre_c = np.empty(first_c[-1], np.int64)
    d_c = np.zeros((first_c[-1], 3, Dc), dtype)
    _fill_compact_kernel(block_first_i, block_j, species_i, dG_dr_bgc, feature_ek,
                         np.array([len(r) for r in rows], np.int64), owner_g, first_c, dest_c, j_c, el_c, centre_c,
                         d_c)
    first_j = np.concatenate(([0], np.cumsum(np.bincount(j_c, minlength=n_atoms)))).astype(np.int64)
    return BlockLayout(first_j, j_c, el_c, d_c, feature_ek, centre_c)


# ---------------------------------------------------------------- fused pass for training (issue 15)
#
# The adjoint needs ∂L/∂F of the whole batch only through one scalar per loss term: for an RMSE or MSE
# term ∂L/∂F_j = α_F (F_j − F_ref,j) with α_F = w_F/(K·RMSE) or 2 w_F/K, and
# ∂L/∂σ_s = α_S (σ_s − σ_ref,s) likewise. So each structure's forces, virial and *unscaled* adjoints
#     vF_ig = −Σ_{b∈i} Σ_c ∂G_ig/∂r_{j_b,c} (F_j_b − F_ref,j_b)_c                         (eV/Å · Å⁻¹)
#     vS_ig = Σ_{(a,b) Voigt} ∂G_ig/∂ε_ab (σ_s − σ_ref,s)_ab / V_s                        (eV/Å³ / Å³)
# are computed in one visit of its blocks, and the caller forms v = α_F vF + α_S vS once the batch
# scalars are known. The blocks are visited grouped by their atom j: F_j is complete at the end of its
# group, whose blocks (~30 KiB at D = 50) are still in L1/L2 for the adjoint update, so each block is
# read from memory once (visited by centre, a structure's blocks, ~6 MB for 216 atoms, were read twice).
# That update runs during the next group's force sums, block by block, so that its arithmetic overlaps
# their reads from memory (a software pipeline: 8-12 % off the kernel, benchmarks/README.md).

#: Voigt order xx yy zz yz xz xy as (a, b) index pairs (as ``units.VOIGT_PAIRS``), for the kernel.
_VOIGT_AB = np.array([[0, 0], [1, 1], [2, 2], [1, 2], [0, 2], [0, 1]], np.int64)


@njit(cache=True)
def _neighbour_order(a0, a1, gidx_i, sh, first_i, j_b):
    """A centre-major layout's blocks of the atoms a0…a1−1 of one structure grouped by their atom j (then
    in centre order): start (n_s+1,) offsets per j − a0; blk (B_s,) block numbers; cen (B_s,) centre − a0."""
    na = a1 - a0
    start = np.zeros(na + 1, np.int64)
    for i in range(a0, a1):
        gi = gidx_i[i]
        for b in range(first_i[gi], first_i[gi + 1]):
            start[j_b[b] + sh - a0 + 1] += 1
    for jl in range(na):
        start[jl + 1] += start[jl]
    cursor = start[:na].copy()
    blk = np.empty(start[na], np.int64)
    cen = np.empty(start[na], np.int64)
    for i in range(a0, a1):
        gi = gidx_i[i]
        for b in range(first_i[gi], first_i[gi + 1]):
            jl = j_b[b] + sh - a0
            blk[cursor[jl]] = b
            cen[cursor[jl]] = i - a0
            cursor[jl] += 1
    return start, blk, cen


@njit(cache=True, fastmath={"reassoc", "contract"})
def _structure_forces_adjoint(a0, a1, dE_dG_ig, gidx_i, shift_i, first_i, j_b, centre_b, el_b, d_bck, feature_ek,
                              F_ref_ic, force_adjoint, F_ic, vF_ig):
    """Eq. 2 forces of the atoms a0…a1−1 of one structure (written into F_ic) and, with ``force_adjoint``,
    their unscaled adjoint vF_ig (block comment above), the blocks visited grouped by atom j: in memory
    order for a neighbour-major layout, through ``_neighbour_order`` for a centre-major one. shift_i is
    the same for all atoms of a structure (``model.make_batch``). F_j sums its blocks in centre order.
    Software pipeline: the forces of group j (read from memory) are interleaved block by block with the
    adjoint update of group j − 1 (from L1/L2, its residual known), so that arithmetic overlaps the reads;
    each (centre, row set) appears once per group, so the adjoint's sums are in the same order either way."""
    na = a1 - a0
    if na == 0:
        return
    n_sets, Dc = feature_ek.shape
    sh = shift_i[a0]
    by_j = centre_b.shape[0] > 0
    if by_j:
        start, blk, cen = np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    else:
        start, blk, cen = _neighbour_order(a0, a1, gidx_i, sh, first_i, j_b)
    w_iek = np.empty((na, n_sets, Dc))  # ∂E_i/∂G_i on each row set, and the adjoint: L2-resident
    u_iek = np.zeros((na if force_adjoint else 0, n_sets, Dc))
    for il in range(na):
        for e in range(n_sets):
            for k in range(Dc):
                w_iek[il, e, k] = dE_dG_ig[a0 + il, feature_ek[e, k]]
    plo, phi = 0, 0  # the previous group, whose adjoint update is due, and its atom's residual r
    r0, r1, r2 = 0.0, 0.0, 0.0
    for jl in range(na + 1):
        lo, hi = 0, 0
        if jl < na:
            lo, hi = (first_i[gidx_i[a0 + jl]], first_i[gidx_i[a0 + jl] + 1]) if by_j else (start[jl], start[jl + 1])
        n_due = phi - plo if force_adjoint else 0
        f0, f1, f2 = 0.0, 0.0, 0.0
        for t in range(max(hi - lo, n_due)):
            if t < hi - lo:  # forces: one loop, three SIMD accumulators, each weight loaded once
                b = lo + t if by_j else blk[lo + t]
                il = centre_b[b] + sh - a0 if by_j else cen[lo + t]
                e = el_b[b]
                c0, c1, c2 = 0.0, 0.0, 0.0
                for k in range(Dc):
                    w = w_iek[il, e, k]
                    c0 += w * d_bck[b, 0, k]
                    c1 += w * d_bck[b, 1, k]
                    c2 += w * d_bck[b, 2, k]
                f0 -= c0
                f1 -= c1
                f2 -= c2
            if t < n_due:  # adjoint of the previous group, its blocks still in L1/L2
                b = plo + t if by_j else blk[plo + t]
                il = centre_b[b] + sh - a0 if by_j else cen[plo + t]
                e = el_b[b]
                for k in range(Dc):
                    u_iek[il, e, k] += d_bck[b, 0, k] * r0 + d_bck[b, 1, k] * r1 + d_bck[b, 2, k] * r2
        if jl < na:
            j = a0 + jl
            F_ic[j, 0], F_ic[j, 1], F_ic[j, 2] = f0, f1, f2
            r0, r1, r2 = f0 - F_ref_ic[j, 0], f1 - F_ref_ic[j, 1], f2 - F_ref_ic[j, 2]
            plo, phi = lo, hi
    if force_adjoint:
        for il in range(na):
            for e in range(n_sets):
                for k in range(Dc):
                    vF_ig[a0 + il, feature_ek[e, k]] -= u_iek[il, e, k]


@njit(cache=True, fastmath={"reassoc", "contract"})
def _structure_virial(s, a0, a1, dE_dG_ig, gidx_i, dG_deps_igcc, W_scc):
    """Eq. 3 virial W_scc[s] = Σ_i Σ_g ∂E_i/∂G_ig ∂G_ig/∂ε (eV) of the atoms a0…a1−1 of structure s."""
    D = dE_dG_ig.shape[1]
    W_cc = np.zeros((3, 3))  # the structure's virial, written once (neighbouring structures share cache lines)
    W_i = np.empty((3, 3))
    for i in range(a0, a1):
        gi = gidx_i[i]
        W_i[:, :] = 0.0  # nine independent sums over g, read in memory order (not nine strided chains)
        for g in range(D):
            w = dE_dG_ig[i, g]
            for a in range(3):
                for c in range(3):
                    W_i[a, c] += w * dG_deps_igcc[gi, g, a, c]
        for a in range(3):
            for c in range(3):
                W_cc[a, c] += W_i[a, c]
    W_scc[s] = W_cc


@njit(cache=True)
def _structure_stress_adjoint(s, a0, a1, gidx_i, dG_deps_igcc, W_scc, sigma_ref_sv, inv_volume, vS_ig):
    """vS_ig = Σ_(a,b) ∂G_ig/∂ε_ab (σ_s − σ_ref,s)_ab / V_s for the atoms a0…a1−1 of structure s."""
    D = vS_ig.shape[1]
    w_hat = np.empty(6)
    for k in range(6):
        a, c = _VOIGT_AB[k, 0], _VOIGT_AB[k, 1]
        w_hat[k] = (W_scc[s, a, c] * inv_volume - sigma_ref_sv[s, k]) * inv_volume
    h0, h1, h2, h3, h4, h5 = w_hat[0], w_hat[1], w_hat[2], w_hat[3], w_hat[4], w_hat[5]
    for i in range(a0, a1):  # Voigt xx yy zz yz xz xy, as _VOIGT_AB (no index table in the inner loop)
        gi = gidx_i[i]
        for g in range(D):
            vS_ig[i, g] = (dG_deps_igcc[gi, g, 0, 0] * h0 + dG_deps_igcc[gi, g, 1, 1] * h1
                           + dG_deps_igcc[gi, g, 2, 2] * h2 + dG_deps_igcc[gi, g, 1, 2] * h3
                           + dG_deps_igcc[gi, g, 0, 2] * h4 + dG_deps_igcc[gi, g, 0, 1] * h5)


@njit(cache=True, parallel=True)
def _fused_kernel(dE_dG_ig, atom_offset_s, gidx_i, shift_i, first_i, j_b, centre_b, el_b, d_bck, feature_ek,
                  dG_deps_igcc, F_ref_ic, sigma_ref_sv, inv_volume_s, force_adjoint, stress_adjoint_s):
    """Per structure (in parallel): forces, virial and the unscaled adjoints vF, vS (block comment above)."""
    n, D = dE_dG_ig.shape
    S = atom_offset_s.shape[0] - 1
    F_ic = np.zeros((n, 3))
    W_scc = np.zeros((S, 3, 3))
    vF_ig = np.zeros((n if force_adjoint else 0, D))
    vS_ig = np.zeros((n, D))
    for s in prange(S):
        a0, a1 = atom_offset_s[s], atom_offset_s[s + 1]
        _structure_forces_adjoint(a0, a1, dE_dG_ig, gidx_i, shift_i, first_i, j_b, centre_b, el_b, d_bck,
                                  feature_ek, F_ref_ic, force_adjoint, F_ic, vF_ig)
        _structure_virial(s, a0, a1, dE_dG_ig, gidx_i, dG_deps_igcc, W_scc)
        if stress_adjoint_s[s] and inv_volume_s[s] > 0:
            _structure_stress_adjoint(s, a0, a1, gidx_i, dG_deps_igcc, W_scc, sigma_ref_sv, inv_volume_s[s], vS_ig)
    return F_ic, W_scc, vF_ig, vS_ig


def forces_virials_adjoints(dE_dG_ig, atom_offset_s, gidx_i, shift_i, layout: BlockLayout, dG_deps_igcc,
                            F_ref_ic, sigma_ref_sv, volume_s, force_adjoint: bool, stress_adjoint_s):
    """Forces F (n, 3) eV/Å, structure virials W (S, 3, 3) eV, and the unscaled adjoints vF (n, D), or (0, D)
    without ``force_adjoint``, and vS (n, D), zero for structures where ``stress_adjoint_s`` is False or
    V = 0 (definitions above), all in one visit of each structure's derivative blocks (``layout``).

    atom_offset_s (S+1,): batch atoms of each structure; F_ref_ic (n, 3) eV/Å and sigma_ref_sv (S, 6)
    eV/Å³ (Voigt) the targets; volume_s (S,) Å³. Structures run in parallel (one thread each).
    """
    volume_s = np.asarray(volume_s, np.float64)
    inv_v = np.where(volume_s > 0, 1.0 / np.where(volume_s > 0, volume_s, 1.0), 0.0)
    # (numba.parallel_chunksize(1), to hand out structures one at a time, made this kernel 7x slower: not used)
    return _fused_kernel(np.ascontiguousarray(dE_dG_ig, dtype=np.float64), atom_offset_s, gidx_i, shift_i,
                         layout.first_i, layout.j_b, layout.centre_b, layout.el_b, layout.d_bck, layout.feature_ek,
                         dG_deps_igcc, np.ascontiguousarray(F_ref_ic, dtype=np.float64),
                         np.ascontiguousarray(sigma_ref_sv, dtype=np.float64), inv_v, bool(force_adjoint),
                         np.ascontiguousarray(stress_adjoint_s, dtype=np.bool_))
