"""Tests of alw_ref/forces.py's block layouts and fused pass (issue 15) against the stored-block kernels."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from alw_ref import forces
from alw_ref.model import derivative_layout, make_batch, predict_batch
from strategies import structures
from test_loss import _setup


def dense_blocks(layout, n_atoms, D):
    """{(i, j): (D, 3)} dG_i/dr_j rebuilt from a layout by summing its pieces (independent of the kernels);
    the groups of a neighbour-major layout are the atoms j, the centre is then centre_b."""
    out = {}
    for a in range(n_atoms):
        for b in range(layout.first_i[a], layout.first_i[a + 1]):
            i = int(layout.centre_b[b]) if layout.by_neighbour else a
            block = out.setdefault((i, int(layout.j_b[b])), np.zeros((D, 3)))
            rows = layout.feature_ek[layout.el_b[b]]
            for k, g in enumerate(rows):
                if layout.d_bck[b, :, k].any():
                    block[g] += layout.d_bck[b, :, k]
    return out


def stored_blocks(desc):
    return {(i, int(desc.block_j[b])): desc.dG_dr_bgc[b] for i in range(len(desc.G_ig))
            for b in range(desc.block_first_i[i], desc.block_first_i[i + 1])}


def two_pass_reference(batch, dE):
    """Forces, structure virials and force adjoint (F̄ = F − F_ref, Ŵ = 0) from the stored-block kernels."""
    F_ref, W_i = forces.forces_and_virials(dE, batch.gidx_i, batch.shift_i, batch.block_first_i, batch.block_j,
                                           batch.dG_dr_bgc, batch.dG_deps_igcc)
    v_ref = forces.descriptor_adjoint(F_ref - batch.forces_ic, np.zeros((len(dE), 3, 3)), batch.gidx_i, batch.shift_i,
                                      batch.block_first_i, batch.block_j, batch.dG_dr_bgc, batch.dG_deps_igcc)
    W_ref = np.zeros((len(batch.structure_s), 3, 3))
    np.add.at(W_ref, batch.structure_i, W_i)
    return F_ref, W_ref, v_ref


@settings(max_examples=15, deadline=None)
@given(raw=st.lists(structures(n_atoms=(1, 5), n_elements=(1, 3)), min_size=1, max_size=3), seed=st.integers(0, 1000))
def test_compact_layout_is_lossless(raw, seed):
    """The compact copy holds exactly the stored dG/dr: every block rebuilt from its pieces equals the
    stored block bit for bit (dropped rows were exactly zero), and blocks absent from the copy are zero;
    so does the stored layout (a strided view)."""
    model, ds, desc, batch = _setup(raw, seed)
    species = model.spec.species_index(ds.numbers)
    layout = derivative_layout(desc, species)
    D = desc.dG_dr_bgc.shape[1]
    ref = stored_blocks(desc)
    for lay in (layout, forces.stored_layout(desc.block_first_i, desc.block_j, desc.dG_dr_bgc)):
        rebuilt = dense_blocks(lay, len(ds.numbers), D)
        for key in set(rebuilt) | set(ref):
            np.testing.assert_array_equal(rebuilt.get(key, np.zeros((D, 3))), ref.get(key, np.zeros((D, 3))))
    assert derivative_layout(desc, species) is derivative_layout(desc, species)  # built once per array


@settings(max_examples=10, deadline=None)
@given(raw=st.lists(structures(n_atoms=(2, 5), n_elements=(2, 3)), min_size=1, max_size=3), seed=st.integers(0, 1000))
def test_fused_pass_matches_two_pass_kernels(raw, seed):
    """forces_virials_adjoints on the compact copy (float64) gives the forces, virials and adjoint of the
    stored-block kernels forces_and_virials and descriptor_adjoint (fed F̄ = F − F_ref, Ŵ = 0) to 1e-13;
    on a float32 copy to 1e-6 (its rounding, 6e-8 per entry); predict_batch agrees with either layout."""
    model, ds, desc, batch = _setup(raw, seed)
    rng = np.random.default_rng(seed)
    dE = rng.normal(size=batch.G_ig.shape)
    F_ref, W_ref, v_ref = two_pass_reference(batch, dE)
    species = model.spec.species_index(ds.numbers)
    for dtype, tol in (("float64", 1e-13), ("float32", 1e-6)):
        layout = derivative_layout(desc, species, dtype)
        assert layout.d_bck.dtype == np.dtype(dtype)
        F, W, vF, vS = forces.forces_virials_adjoints(dE, batch.atom_offset_s, batch.gidx_i, batch.shift_i, layout,
                                                      batch.dG_deps_igcc, batch.forces_ic, batch.stress_sv,
                                                      batch.volume_s, True, np.zeros(len(W_ref), bool))
        for got, ref in ((F, F_ref), (W, W_ref), (vF, v_ref)):
            assert np.abs(got - ref).max() <= tol * (np.abs(ref).max() + 1e-300)
        assert not vS.any()
    stored = make_batch(ds, desc, batch.structure_s, species, compact=None)
    a, b = predict_batch(model, batch)[0], predict_batch(model, stored)[0]
    np.testing.assert_allclose(a.forces_ic, b.forces_ic, rtol=0, atol=1e-13 * (1 + np.abs(b.forces_ic).max()))
    big = 1 + np.nanmax(np.abs(b.stress_sv), initial=0)
    np.testing.assert_allclose(a.stress_sv, b.stress_sv, rtol=0, atol=1e-13 * big)


@settings(max_examples=10, deadline=None)
@given(raw=st.lists(structures(n_atoms=(2, 5), n_elements=(1, 3)), min_size=1, max_size=3), seed=st.integers(0, 1000))
def test_fused_pass_on_stored_blocks_matches_two_pass_kernels(raw, seed):
    """forces_virials_adjoints on the stored (centre-major) blocks, visited by atom j through an index,
    gives the forces, virials and adjoint of forces_and_virials and descriptor_adjoint to 1e-13."""
    model, ds, desc, batch = _setup(raw, seed)
    dE = np.random.default_rng(seed).normal(size=batch.G_ig.shape)
    F_ref, W_ref, v_ref = two_pass_reference(batch, dE)
    layout = forces.stored_layout(desc.block_first_i, desc.block_j, desc.dG_dr_bgc)
    assert not layout.by_neighbour
    F, W, vF, _ = forces.forces_virials_adjoints(dE, batch.atom_offset_s, batch.gidx_i, batch.shift_i, layout,
                                                 batch.dG_deps_igcc, batch.forces_ic, batch.stress_sv, batch.volume_s,
                                                 True, np.zeros(len(W_ref), bool))
    for got, ref in ((F, F_ref), (W, W_ref), (vF, v_ref)):
        assert np.abs(got - ref).max() <= 1e-13 * (np.abs(ref).max() + 1e-300)
