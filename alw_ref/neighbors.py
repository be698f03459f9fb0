"""Periodic neighbour list (Numba, cell-list binning, linear in the number of atoms).

    neighbor_list(positions, cell, pbc, cutoff) -> NeighborList

lists every pair (i, j, S) with |r_ij| < cutoff (strict), where S is an integer image shift and

    r_ij = positions[j] - positions[i] + S @ cell            (Å; rows of ``cell`` are lattice vectors)

computed from the positions exactly as given (atoms need not be wrapped into the cell). The list is
full (both i->j and j->i), excludes only i == j with S == 0 (coincident distinct atoms are listed
with d == 0), and is sorted by i, then j, then S lexicographically. S is 0 along non-periodic
directions, so non-periodic cell vectors never enter the result; they may be zero or degenerate
(isolated molecule: cell all zeros, pbc F F F). Periodic cell vectors must be linearly independent.

Algorithm (cost O(n_atoms) for a fixed density and cutoff, plus an O(n log n) sort of bin keys):
  1. Basis completion. The periodic cell vectors are kept; each non-periodic row is replaced by a
     unit vector orthogonal to the span of the periodic ones, giving an invertible basis B. The
     fractional coordinates f = r B^-1 along a periodic direction k then satisfy
     |Δf_k| <= |Δr| / d_k with d_k = |det B| / |b_l x b_m| the distance between lattice planes.
  2. Wrapping. Along periodic directions f is wrapped into [0, 1); the integer offset o_i = floor(f_i)
     is remembered so that shifts stay relative to the original positions.
  3. Ghosts. Each atom j gets images T (integer, 0 along non-periodic directions) for every T with
     -h_k <= f_jk + T_k < 1 + h_k, h_k = r_search / d_k: only atoms within reach of a face are
     copied, as many layers as needed when the cutoff exceeds the cell.
  4. Binning. Ghosts are binned in Cartesian boxes of side >= r_search over their bounding box
     (at most 2**20 bins per axis) and sorted by bin key; occupied bins are found by binary search,
     so empty space costs nothing (a sparse molecule in a huge box stays linear).
  5. Scan. For every real atom i the 27 surrounding bins are scanned; a candidate ghost of atom j
     with image T gives S = T - o_j + o_i, and the pair is kept iff |r_ij| < cutoff with r_ij
     recomputed from the original positions. The (centre, ghost) of each pair goes to a buffer
     grown on demand (room for every candidate of the centre being scanned).
  6. Order. Counting sorts by j, then i, and an insertion sort by S among images of one atom.

Kernels are serial (callers parallelise over structures); memory is the output plus the ghosts
plus 32 bytes per pair (buffer and sort).

r_search = cutoff + margin, with margin ~1e-10 of the coordinate scale: it only absorbs rounding
of the wrapped coordinates; the final test d < cutoff uses the unwrapped formula above.

Array-name suffixes used across alw_ref (defined here, once):
    _i  atom            _n  pair (i, j, image)      _t  triplet (i, j, k)
    _c  Cartesian axis  _g  descriptor feature      _b  derivative block (centre i, atom j)
    _s  structure       _v  Voigt component (xx yy zz yz xz xy)
Inside this module only, _h indexes ghost atoms (periodic images) and _k lattice directions.
"""

from dataclasses import dataclass
import math

import numpy as np
from numba import njit

from alw_ref.errors import DataError

_MAX_BINS_PER_AXIS = 2**20  # keeps the int64 bin key below 2**60
_MAX_GHOSTS = 2**31  # more periodic images than this is a cell/cutoff mistake, not a request
_DEPENDENCE_TOLERANCE = 1e-10  # |a x b| / (|a||b|) or |det| / (|a||b||c|) below this: dependent
_MARGIN_REL = 1e-10  # search margin relative to the coordinate scale (rounding of wrapped coordinates)


@dataclass(frozen=True)
class NeighborList:
    """Full, sorted neighbour list of one structure (see the module docstring for the contract).

    Attributes
    ----------
    i_n : (n_pairs,) int64 — centre atom.
    j_n : (n_pairs,) int64 — neighbour atom.
    shift_nc : (n_pairs, 3) int64 — image shift S (0 along non-periodic directions).
    r_nc : (n_pairs, 3) float64, Å — positions[j] - positions[i] + S @ cell.
    d_n : (n_pairs,) float64, Å — |r_nc|, every value < cutoff.
    first_i : (n_atoms + 1,) int64 — CSR offsets: centre i owns pairs first_i[i]:first_i[i+1].
    """

    i_n: np.ndarray
    j_n: np.ndarray
    shift_nc: np.ndarray
    r_nc: np.ndarray
    d_n: np.ndarray
    first_i: np.ndarray


def neighbor_list(positions, cell, pbc, cutoff) -> NeighborList:
    """All pairs (i, j, S) closer than ``cutoff``, periodic along the directions flagged in ``pbc``.

    Parameters
    ----------
    positions : (n_atoms, 3) float64, Å — Cartesian positions; need not be wrapped into the cell.
    cell : (3, 3) float64, Å — rows are lattice vectors; rows of non-periodic directions are
        ignored (may be zero or degenerate).
    pbc : (3,) bool — periodic flag per lattice direction.
    cutoff : float, Å — strictly positive; pairs with d < cutoff are listed.

    Returns
    -------
    NeighborList — see its docstring and the module docstring (contract, algorithm).

    Cost: O(n_atoms * (1 + n_neighbours)) time and memory for a fixed density; the number of ghost
    atoms grows as prod_k (1 + 2 cutoff / d_k) per atom when the cutoff exceeds the cell.

    Raises
    ------
    DataError — wrong shapes, non-finite values, cutoff <= 0, linearly dependent periodic cell
    vectors, or a cutoff needing more than 2**31 ghost atoms.
    """
    positions_ic, cell_kc, periodic_k, cutoff = _validated(positions, cell, pbc, cutoff)
    basis_kc = _completed_basis(cell_kc, periodic_k)
    inverse_ck = np.linalg.inv(basis_kc)  # column k: reciprocal vector b*_k, b_l . b*_k = δ_lk
    plane_distance_k = 1.0 / np.linalg.norm(inverse_ck, axis=0)  # = |det B| / |b_l x b_m|

    # Margin: rounding of wrapped coordinates ~ eps * (|positions| + |images| * |cell|).
    layers = float(np.max(np.where(periodic_k, cutoff / plane_distance_k, 0.0))) + 2.0
    scale = cutoff + float(np.max(np.abs(positions_ic), initial=0.0)) + layers * float(
        np.sum(np.linalg.norm(cell_kc[periodic_k], axis=1)))
    search = cutoff + _MARGIN_REL * scale
    reach_k = np.where(periodic_k, search / plane_distance_k, 0.0)
    n_image_k = np.where(periodic_k, np.ceil(reach_k) + 1, 0).astype(np.int64)

    n_atoms = positions_ic.shape[0]
    ghosts_estimate = n_atoms * float(np.prod(1.0 + 2.0 * reach_k + periodic_k))
    if ghosts_estimate > _MAX_GHOSTS:
        raise DataError(
            f"neighbor_list: cutoff {cutoff} Å needs about {ghosts_estimate:.3g} periodic images of "
            f"{n_atoms} atoms (lattice-plane distances {plane_distance_k[periodic_k]} Å); "
            f"the cell is too small or too flat for this cutoff")

    frac_ik = positions_ic @ inverse_ck
    offset_ik = np.where(periodic_k, np.floor(frac_ik), 0.0).astype(np.int64)
    frac_ik = frac_ik - offset_ik
    wrapped_ic = positions_ic - offset_ik.astype(np.float64) @ cell_kc

    ghost_hc, ghost_atom_h, ghost_shift_hk = _make_ghosts(
        wrapped_ic, frac_ik, offset_ik, cell_kc, periodic_k, reach_k, n_image_k)
    key_h, lo_c, side_c, n_bin_c = _bin_keys(ghost_hc, search)
    order_h = np.argsort(key_h, kind="mergesort")
    i_n, j_n, shift_nk, r_nc, d_n, first_i = _pairs(
        positions_ic, cell_kc, wrapped_ic, offset_ik, key_h[order_h],
        np.ascontiguousarray(ghost_hc[order_h]), ghost_atom_h[order_h],
        np.ascontiguousarray(ghost_shift_hk[order_h]), lo_c, side_c, n_bin_c, search, cutoff)
    return NeighborList(i_n=i_n, j_n=j_n, shift_nc=shift_nk, r_nc=r_nc, d_n=d_n, first_i=first_i)


def _validated(positions, cell, pbc, cutoff):
    """Check and convert the inputs of ``neighbor_list``; raise DataError naming the field."""
    positions_ic = np.ascontiguousarray(positions, dtype=np.float64)
    if positions_ic.ndim != 2 or positions_ic.shape[1] != 3:
        raise DataError(f"neighbor_list: field 'positions': expected shape (n_atoms, 3), "
                        f"got {positions_ic.shape}")
    bad = np.flatnonzero(~np.isfinite(positions_ic).all(axis=1))
    if bad.size:
        raise DataError(f"neighbor_list: field 'positions': non-finite coordinates of atom(s) "
                        f"{bad[:10].tolist()}")
    cell_kc = np.ascontiguousarray(cell, dtype=np.float64)
    if cell_kc.shape != (3, 3):
        raise DataError(f"neighbor_list: field 'cell': expected shape (3, 3), got {cell_kc.shape}")
    if not np.isfinite(cell_kc).all():
        raise DataError(f"neighbor_list: field 'cell': non-finite entries {cell_kc.tolist()}")
    pbc_k = np.asarray(pbc)
    if pbc_k.shape != (3,) or not (pbc_k.dtype == np.bool_ or (
            np.issubdtype(pbc_k.dtype, np.integer) and np.isin(pbc_k, (0, 1)).all())):
        raise DataError(f"neighbor_list: field 'pbc': expected 3 booleans, got {pbc!r}")
    periodic_k = pbc_k.astype(np.bool_)
    if isinstance(cutoff, (bool, np.bool_)) or not isinstance(cutoff, (int, float, np.number)):
        raise DataError(f"neighbor_list: field 'cutoff': expected a real number, got {cutoff!r}")
    cutoff = float(cutoff)
    if not (math.isfinite(cutoff) and cutoff > 0.0):
        raise DataError(f"neighbor_list: field 'cutoff': must be finite and > 0 Å, got {cutoff}")
    _check_periodic_vectors_independent(cell_kc, periodic_k)
    return positions_ic, cell_kc, periodic_k, cutoff


def _check_periodic_vectors_independent(cell_kc, periodic_k):
    """Raise DataError unless the periodic rows of ``cell_kc`` (Å) are linearly independent.

    Relative test: |a| == 0, |a x b| <= tol |a||b|, |det| <= tol |a||b||c| with tol = 1e-10.
    """
    dirs = np.flatnonzero(periodic_k).tolist()
    norm_k = np.linalg.norm(cell_kc, axis=1)
    for k in dirs:
        if norm_k[k] == 0.0:
            raise DataError(f"neighbor_list: field 'cell': periodic cell vector {k} is zero "
                            f"(pbc = {periodic_k.tolist()})")
    if len(dirs) == 3 and abs(np.linalg.det(cell_kc)) / np.prod(norm_k) > _DEPENDENCE_TOLERANCE:
        return  # a volume this large rules out parallel pairs too (|det| <= |a x b||c|)
    for a, b in ((p, q) for p in dirs for q in dirs if p < q):
        sine = np.linalg.norm(np.cross(cell_kc[a], cell_kc[b])) / (norm_k[a] * norm_k[b])
        if sine <= _DEPENDENCE_TOLERANCE:
            raise DataError(f"neighbor_list: field 'cell': periodic cell vectors {a} and {b} are "
                            f"linearly dependent (parallel; pbc = {periodic_k.tolist()})")
    if len(dirs) == 3:
        volume = abs(np.linalg.det(cell_kc)) / np.prod(norm_k)
        if volume <= _DEPENDENCE_TOLERANCE:
            raise DataError("neighbor_list: field 'cell': periodic cell vectors 0, 1 and 2 are "
                            "linearly dependent (coplanar, zero volume)")


def _completed_basis(cell_kc, periodic_k):
    """(3, 3) invertible basis: periodic rows of ``cell_kc`` (Å), other rows unit vectors
    orthogonal to the periodic span (so plane distances are those of the periodic lattice)."""
    dirs = np.flatnonzero(periodic_k)
    if dirs.size == 3:
        return cell_kc
    basis_kc = np.eye(3)
    if dirs.size == 0:
        return basis_kc
    # Orthonormal complement of the periodic span from the SVD of the periodic rows.
    _, _, vt_cc = np.linalg.svd(cell_kc[dirs])
    complement_kc = vt_cc[dirs.size:]
    basis_kc[dirs] = cell_kc[dirs]
    basis_kc[np.flatnonzero(~periodic_k)] = complement_kc
    return basis_kc


@njit(cache=True)
def _image_needed(frac_k, image_k, periodic_k, reach_k):
    """True if fractional coordinate frac_k + image_k lies within reach_k of [0, 1) along every
    periodic direction (a ghost there may be within the search radius of a real atom)."""
    for k in range(3):
        if periodic_k[k]:
            f = frac_k[k] + image_k[k]
            if f < -reach_k[k] or f >= 1.0 + reach_k[k]:
                return False
    return True


@njit(cache=True)
def _atom_ghosts(j, wrapped_ic, frac_ik, offset_ik, cell_kc, periodic_k, reach_k, n_image_k,
                 write, start, ghost_hc, ghost_atom_h, ghost_shift_hk):
    """Images of atom j needed as ghosts; returns their number and, if ``write``, stores them
    from index ``start`` (see ``_make_ghosts`` for the arrays)."""
    image_k = np.zeros(3, dtype=np.int64)
    count = 0
    for t0 in range(-n_image_k[0], n_image_k[0] + 1):
        image_k[0] = t0
        for t1 in range(-n_image_k[1], n_image_k[1] + 1):
            image_k[1] = t1
            for t2 in range(-n_image_k[2], n_image_k[2] + 1):
                image_k[2] = t2
                if not _image_needed(frac_ik[j], image_k, periodic_k, reach_k):
                    continue
                if write:
                    h = start + count
                    for c in range(3):
                        ghost_hc[h, c] = (wrapped_ic[j, c] + t0 * cell_kc[0, c]
                                          + t1 * cell_kc[1, c] + t2 * cell_kc[2, c])
                        ghost_shift_hk[h, c] = image_k[c] - offset_ik[j, c]
                    ghost_atom_h[h] = j
                count += 1
    return count


@njit(cache=True)
def _make_ghosts(wrapped_ic, frac_ik, offset_ik, cell_kc, periodic_k, reach_k, n_image_k):
    """Ghost atoms: images T of wrapped atoms near a face (two passes: count, fill).

    wrapped_ic (n_atoms, 3) float64 Å, frac_ik (n_atoms, 3) float64 wrapped fractional coordinates,
    offset_ik (n_atoms, 3) int64 wrapping offsets o, cell_kc (3, 3) float64 Å, periodic_k (3,) bool,
    reach_k (3,) float64 search radius over plane distance, n_image_k (3,) int64 image range.
    Returns ghost_hc (n_ghosts, 3) float64 Å = wrapped_j + T @ cell, ghost_atom_h (n_ghosts,) int64
    atom j, ghost_shift_hk (n_ghosts, 3) int64 = T - o_j (shift relative to the original position).
    """
    n_atoms = wrapped_ic.shape[0]
    first_j = np.zeros(n_atoms + 1, dtype=np.int64)
    ghost_hc = np.empty((0, 3), dtype=np.float64)
    ghost_atom_h = np.empty(0, dtype=np.int64)
    ghost_shift_hk = np.empty((0, 3), dtype=np.int64)
    for j in range(n_atoms):
        first_j[j + 1] = first_j[j] + _atom_ghosts(
            j, wrapped_ic, frac_ik, offset_ik, cell_kc, periodic_k, reach_k, n_image_k,
            False, 0, ghost_hc, ghost_atom_h, ghost_shift_hk)
    n_ghosts = first_j[n_atoms]
    ghost_hc = np.empty((n_ghosts, 3), dtype=np.float64)
    ghost_atom_h = np.empty(n_ghosts, dtype=np.int64)
    ghost_shift_hk = np.empty((n_ghosts, 3), dtype=np.int64)
    for j in range(n_atoms):
        _atom_ghosts(j, wrapped_ic, frac_ik, offset_ik, cell_kc, periodic_k, reach_k, n_image_k,
                     True, first_j[j], ghost_hc, ghost_atom_h, ghost_shift_hk)
    return ghost_hc, ghost_atom_h, ghost_shift_hk


@njit(cache=True)
def _bin_of(q_c, lo_c, side_c, n_bin_c, bin_c):
    """Write into bin_c (3,) int64 the Cartesian bin of point q_c (Å)."""
    for c in range(3):
        b = int((q_c[c] - lo_c[c]) / side_c[c]) if n_bin_c[c] > 1 else 0
        bin_c[c] = min(max(b, 0), n_bin_c[c] - 1)


@njit(cache=True)
def _bin_keys(ghost_hc, search):
    """Bin ghosts in boxes of side >= search (Å) over their bounding box.

    Returns key_h (n_ghosts,) int64 = (b_x n_y + b_y) n_z + b_z, lo_c (3,) float64 Å lower corner,
    side_c (3,) float64 Å bin side, n_bin_c (3,) int64 bins per axis (<= 2**20 each).
    """
    n_ghosts = ghost_hc.shape[0]
    lo_c = np.zeros(3)
    side_c = np.ones(3)
    n_bin_c = np.ones(3, dtype=np.int64)
    if n_ghosts > 0:
        for c in range(3):
            lo = ghost_hc[:, c].min()
            extent = ghost_hc[:, c].max() - lo
            n_bin = int(min(max(extent / search, 1.0), _MAX_BINS_PER_AXIS))
            lo_c[c] = lo
            n_bin_c[c] = n_bin
            side_c[c] = extent / n_bin if n_bin > 1 else 1.0
    key_h = np.empty(n_ghosts, dtype=np.int64)
    bin_c = np.empty(3, dtype=np.int64)
    for h in range(n_ghosts):
        _bin_of(ghost_hc[h], lo_c, side_c, n_bin_c, bin_c)
        key_h[h] = (bin_c[0] * n_bin_c[1] + bin_c[1]) * n_bin_c[2] + bin_c[2]
    return key_h, lo_c, side_c, n_bin_c


@njit(cache=True)
def _lower_bound(sorted_key_h, key):
    """First index h with sorted_key_h[h] >= key (binary search)."""
    lo = 0
    hi = sorted_key_h.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if sorted_key_h[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _column_ranges(q_c, key_h, lo_c, side_c, n_bin_c, range_col):
    """Ghost index ranges of the (up to 9) bin columns around point q_c (Å), each spanning three
    bins along z. Writes [h_begin, h_end) per column into range_col (9, 2) int64; returns the
    number of columns and the total number of candidate ghosts (an upper bound on the pairs)."""
    bin_c = np.empty(3, dtype=np.int64)
    _bin_of(q_c, lo_c, side_c, n_bin_c, bin_c)
    z_first = max(bin_c[2] - 1, 0)
    z_last = min(bin_c[2] + 1, n_bin_c[2] - 1)
    n_col = 0
    n_candidates = 0
    for bx in range(max(bin_c[0] - 1, 0), min(bin_c[0] + 2, n_bin_c[0])):
        for by in range(max(bin_c[1] - 1, 0), min(bin_c[1] + 2, n_bin_c[1])):
            column = (bx * n_bin_c[1] + by) * n_bin_c[2]
            range_col[n_col, 0] = _lower_bound(key_h, column + z_first)
            range_col[n_col, 1] = _lower_bound(key_h, column + z_last + 1)
            n_candidates += range_col[n_col, 1] - range_col[n_col, 0]
            n_col += 1
    return n_col, n_candidates


@njit(cache=True)
def _pair_vector(i, j, s0, s1, s2, positions_ic, cell_kc):
    """r_ij = positions[j] - positions[i] + S @ cell (Å) from the original positions, as 3 floats."""
    rx = positions_ic[j, 0] - positions_ic[i, 0] + (
        s0 * cell_kc[0, 0] + s1 * cell_kc[1, 0] + s2 * cell_kc[2, 0])
    ry = positions_ic[j, 1] - positions_ic[i, 1] + (
        s0 * cell_kc[0, 1] + s1 * cell_kc[1, 1] + s2 * cell_kc[2, 1])
    rz = positions_ic[j, 2] - positions_ic[i, 2] + (
        s0 * cell_kc[0, 2] + s1 * cell_kc[1, 2] + s2 * cell_kc[2, 2])
    return rx, ry, rz


@njit(cache=True)
def _scan_centre(i, range_col, n_col, positions_ic, cell_kc, wrapped_ic, offset_ik, ghost_hc,
                 ghost_atom_h, ghost_shift_hk, search, cutoff, start, h_b):
    """Ghosts h within ``cutoff`` of centre i among the given columns, stored in h_b from index
    ``start``; returns their number. The final test d < cutoff uses ``_pair_vector``."""
    search2 = search * search
    count = 0
    for col in range(n_col):
        for h in range(range_col[col, 0], range_col[col, 1]):
            dx = ghost_hc[h, 0] - wrapped_ic[i, 0]
            dy = ghost_hc[h, 1] - wrapped_ic[i, 1]
            dz = ghost_hc[h, 2] - wrapped_ic[i, 2]
            if dx * dx + dy * dy + dz * dz >= search2:
                continue
            j = ghost_atom_h[h]
            s0 = ghost_shift_hk[h, 0] + offset_ik[i, 0]
            s1 = ghost_shift_hk[h, 1] + offset_ik[i, 1]
            s2 = ghost_shift_hk[h, 2] + offset_ik[i, 2]
            if j == i and s0 == 0 and s1 == 0 and s2 == 0:
                continue
            rx, ry, rz = _pair_vector(i, j, s0, s1, s2, positions_ic, cell_kc)
            if math.sqrt(rx * rx + ry * ry + rz * rz) >= cutoff:
                continue
            h_b[start + count] = h
            count += 1
    return count


@njit(cache=True)
def _shift_less(a, b, shift_hk):
    """True if the image shift of ghost a precedes that of ghost b lexicographically."""
    for k in range(3):
        if shift_hk[a, k] != shift_hk[b, k]:
            return shift_hk[a, k] < shift_hk[b, k]
    return False


@njit(cache=True)
def _sorted_order(i_b, h_b, ghost_atom_h, ghost_shift_hk, used, first_i):
    """Buffer indices of the pairs (centre i_b, ghost h_b) in the order (i, j, S), (used,) int64.

    Two stable counting sorts (by j, then by i; O(n_pairs + n_atoms)), then an insertion sort by S
    within each run of equal (i, j) — the images of one atom inside the cutoff, short runs. For a
    fixed centre S = ghost shift + offset of i, so ghost shifts order the images.
    """
    n_atoms = first_i.shape[0] - 1
    next_j = np.zeros(n_atoms + 1, dtype=np.int64)
    for p in range(used):
        next_j[ghost_atom_h[h_b[p]] + 1] += 1
    for j in range(n_atoms):
        next_j[j + 1] += next_j[j]
    by_j = np.empty(used, dtype=np.int64)
    for p in range(used):
        j = ghost_atom_h[h_b[p]]
        by_j[next_j[j]] = p
        next_j[j] += 1
    next_i = first_i[:n_atoms].copy()
    order = np.empty(used, dtype=np.int64)
    for q in range(used):
        p = by_j[q]
        order[next_i[i_b[p]]] = p
        next_i[i_b[p]] += 1
    run = 0
    while run < used:
        i, j = i_b[order[run]], ghost_atom_h[h_b[order[run]]]
        run_end = run + 1
        while run_end < used and i_b[order[run_end]] == i and ghost_atom_h[h_b[order[run_end]]] == j:
            run_end += 1
        for q in range(run + 1, run_end):
            p = order[q]
            r = q
            while r > run and _shift_less(h_b[p], h_b[order[r - 1]], ghost_shift_hk):
                order[r] = order[r - 1]
                r -= 1
            order[r] = p
        run = run_end
    return order


@njit(cache=True)
def _pairs(positions_ic, cell_kc, wrapped_ic, offset_ik, key_h, ghost_hc, ghost_atom_h,
           ghost_shift_hk, lo_c, side_c, n_bin_c, search, cutoff):
    """Pair list sorted by i, then j, then S: one scan storing (centre, ghost) in a buffer grown on
    demand, then the sorted pairs written out.

    Ghost arrays must be sorted by key_h. Returns i_n, j_n (n_pairs,) int64, shift_nk
    (n_pairs, 3) int64, r_nc (n_pairs, 3) float64 Å, d_n (n_pairs,) float64 Å, first_i
    (n_atoms + 1,) int64.
    """
    n_atoms = positions_ic.shape[0]
    # Visit centres in bin order so consecutive centres scan the same ghosts (cache locality).
    centre_key_i = np.empty(n_atoms, dtype=np.int64)
    bin_c = np.empty(3, dtype=np.int64)
    for i in range(n_atoms):
        _bin_of(wrapped_ic[i], lo_c, side_c, n_bin_c, bin_c)
        centre_key_i[i] = (bin_c[0] * n_bin_c[1] + bin_c[1]) * n_bin_c[2] + bin_c[2]
    visit_order = np.argsort(centre_key_i)
    count_i = np.zeros(n_atoms, dtype=np.int64)
    range_col = np.empty((9, 2), dtype=np.int64)
    capacity = 64 * n_atoms + 64
    i_b = np.empty(capacity, dtype=np.int64)
    h_b = np.empty(capacity, dtype=np.int64)
    used = 0
    for i in visit_order:
        n_col, n_candidates = _column_ranges(wrapped_ic[i], key_h, lo_c, side_c, n_bin_c, range_col)
        if used + n_candidates > capacity:
            capacity = max(2 * capacity, used + n_candidates)
            i_new = np.empty(capacity, dtype=np.int64)
            h_new = np.empty(capacity, dtype=np.int64)
            i_new[:used] = i_b[:used]
            h_new[:used] = h_b[:used]
            i_b, h_b = i_new, h_new
        count = _scan_centre(i, range_col, n_col, positions_ic, cell_kc, wrapped_ic, offset_ik,
                             ghost_hc, ghost_atom_h, ghost_shift_hk, search, cutoff, used, h_b)
        i_b[used:used + count] = i
        count_i[i] = count
        used += count
    first_i = np.zeros(n_atoms + 1, dtype=np.int64)
    for i in range(n_atoms):
        first_i[i + 1] = first_i[i] + count_i[i]
    i_n = np.empty(used, dtype=np.int64)
    j_n = np.empty(used, dtype=np.int64)
    shift_nk = np.empty((used, 3), dtype=np.int64)
    r_nc = np.empty((used, 3), dtype=np.float64)
    d_n = np.empty(used, dtype=np.float64)
    order = _sorted_order(i_b, h_b, ghost_atom_h, ghost_shift_hk, used, first_i)
    for n in range(used):
        i = i_b[order[n]]
        h = h_b[order[n]]
        j = ghost_atom_h[h]
        s0 = ghost_shift_hk[h, 0] + offset_ik[i, 0]
        s1 = ghost_shift_hk[h, 1] + offset_ik[i, 1]
        s2 = ghost_shift_hk[h, 2] + offset_ik[i, 2]
        rx, ry, rz = _pair_vector(i, j, s0, s1, s2, positions_ic, cell_kc)
        i_n[n] = i
        j_n[n] = j
        shift_nk[n, 0] = s0
        shift_nk[n, 1] = s1
        shift_nk[n, 2] = s2
        r_nc[n, 0] = rx
        r_nc[n, 1] = ry
        r_nc[n, 2] = rz
        d_n[n] = math.sqrt(rx * rx + ry * ry + rz * rz)
    return i_n, j_n, shift_nk, r_nc, d_n, first_i
