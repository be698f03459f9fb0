"""Periodic neighbour list (Numba, cell-list binning, linear in the number of atoms).

CONTRACT (fixed; being implemented):

    neighbor_list(positions, cell, pbc, cutoff) -> NeighborList

Array-name suffixes used across alw_ref (defined here, once):
    _i  atom            _n  pair (i, j, image)      _t  triplet (i, j, k)
    _c  Cartesian axis  _g  descriptor feature      _b  derivative block (centre i, atom j)
    _s  structure       _v  Voigt component (xx yy zz yz xz xy)
"""
