"""Behler–Parrinello model: one MLP per element; energy (Eq. 1), forces (Eq. 2), stress (Eq. 3), ∂L/∂θ.

    E = Σ_i E_i,   E_i = ε_{Z_i} + NN_{Z_i}(x_i),   x_i = (G_i − μ_{Z_i}) / s_{Z_i}            (paper Eq. 1)

* G_i: the ACSF vector of atom i (``acsf``); μ_e, s_e: per-element mean and standard deviation of each
  feature over the training set (``fit_standardization``; a feature with zero variance keeps s = 1,
  so it maps to 0 and carries no weight).
* ε_e: per-element reference energy (eV/atom) fitted by least squares on the training set
  (``fit_reference_energies``), so the networks learn the residual.
* NN_e: dense network D → hidden… → 1 (``mlp``), default 2 × 30 tanh as in the paper.
* Forces and stress come from ∂E_i/∂G_i = (∂NN/∂x_i) / s through the sparse contractions of
  ``forces`` (Eq. 2 and Eq. 3; stress in eV/Å³, ASE sign, Voigt xx yy zz yz xz xy).

All parameters of all element networks live in one flat float64 vector ``theta`` (element-major, then
layer, then W before b; W_l is (n_in, n_out) row-major), so the optimizer and gradient checks see one
array; ``Model.layers(e)`` returns views into it.

The training gradient ∂L/∂θ (``loss_gradient``) is exact: the energy term by ordinary backprop, the
force and stress terms by the descriptor-space adjoint v_i (``forces.descriptor_adjoint``) and the
reverse-over-forward pass of ``mlp.parameter_gradient`` on the tangent t_i = v_i / s.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field, replace

import numba
import numpy as np

from . import forces as _forces
from . import mlp
from .acsf import compute_acsf
from .acsf_spec import ACSFSpec
from .units import VOIGT_PAIRS

#: Largest |s| treated as zero variance (descriptor units); such features get s = 1.
ZERO_VARIANCE = 1e-12


def layer_sizes(n_features: int, hidden) -> list[int]:
    """[D, h_1, …, h_k, 1]."""
    return [int(n_features), *[int(h) for h in hidden], 1]


def n_params_per_element(n_features: int, hidden) -> int:
    """Number of weights and biases of one element's network."""
    s = layer_sizes(n_features, hidden)
    return sum(s[k] * s[k + 1] + s[k + 1] for k in range(len(s) - 1))


def init_parameters(n_features: int, hidden, n_elements: int, seed: int) -> np.ndarray:
    """Flat θ: Glorot/Xavier-uniform weights U(±√(6/(n_in+n_out))), zero biases; reproducible from seed.

    Glorot & Bengio, AISTATS 2010 (the initialisation for tanh networks).
    """
    rng = np.random.default_rng(seed)
    s = layer_sizes(n_features, hidden)
    parts = []
    for _ in range(n_elements):
        for k in range(len(s) - 1):
            limit = np.sqrt(6.0 / (s[k] + s[k + 1]))
            parts.append(rng.uniform(-limit, limit, s[k] * s[k + 1]))
            parts.append(np.zeros(s[k + 1]))
    return np.concatenate(parts)


def fit_standardization(G_ig: np.ndarray, species_i: np.ndarray, n_elements: int):
    """Per-element feature mean μ (n_el, D) and scale s (n_el, D) of the training descriptors.

    s is the population standard deviation; where it is ≤ ZERO_VARIANCE (a constant feature, or an
    element absent from the training set) s = 1 so that x = G − μ stays finite.
    """
    D = G_ig.shape[1]
    mean = np.zeros((n_elements, D))
    scale = np.ones((n_elements, D))
    for e in range(n_elements):
        rows = G_ig[species_i == e]
        if len(rows):
            mean[e] = rows.mean(axis=0)
            std = rows.std(axis=0)
            scale[e] = np.where(std > ZERO_VARIANCE, std, 1.0)
    return mean, scale


def fit_descriptor_range(G_ig: np.ndarray, species_i: np.ndarray, n_elements: int):
    """Per-element feature minimum and maximum (n_el, D) each, descriptor units, of the training descriptors.

    Recorded in the model so that exported potentials (n2p2's ``scaling.data`` G_min, G_max) can flag
    extrapolation. An element absent from the training set gets min = max = 0 (every non-zero descriptor
    of that element is then outside the training range, which is the truth).
    """
    g_min = np.full((n_elements, G_ig.shape[1]), np.inf)
    g_max = -g_min
    np.minimum.at(g_min, species_i, G_ig)
    np.maximum.at(g_max, species_i, G_ig)
    absent = np.bincount(species_i, minlength=n_elements) == 0
    g_min[absent] = g_max[absent] = 0.0
    return g_min, g_max


def fit_reference_energies(energy_s: np.ndarray, counts_se: np.ndarray) -> np.ndarray:
    """ε (n_el,) eV/atom minimising Σ_s (E_s − Σ_e n_se ε_e)² (linear least squares).

    energy_s : (S,) total energies, eV;  counts_se : (S, n_el) number of atoms of each element.
    When the compositions do not determine every ε (e.g. every structure is Mo18Te36), the
    minimum-norm solution is used (numpy.linalg.lstsq): only the fitted combination matters for E.
    """
    eps, *_ = np.linalg.lstsq(np.asarray(counts_se, float), np.asarray(energy_s, float), rcond=None)
    return eps


@dataclass
class Model:
    """A Behler–Parrinello potential: descriptor spec, normalisation, architecture and parameters.

    spec : ACSFSpec — its element order is the model's;  hidden : hidden-layer widths;
    activation : name in ``mlp.ACTIVATIONS``;  g_mean_eg, g_scale_eg : (n_el, D) standardisation;
    e_ref_e : (n_el,) reference energies, eV/atom;  theta : flat parameters (module docstring);
    g_min_eg, g_max_eg : (n_el, D) per-element min and max of the training descriptors (descriptor units,
    ``fit_descriptor_range``), or None for models trained before they were recorded.
    """

    spec: ACSFSpec
    hidden: tuple
    activation: str
    g_mean_eg: np.ndarray
    g_scale_eg: np.ndarray
    e_ref_e: np.ndarray
    theta: np.ndarray
    meta: dict = field(default_factory=dict)
    g_min_eg: np.ndarray | None = None
    g_max_eg: np.ndarray | None = None

    @classmethod
    def create(cls, spec: ACSFSpec, hidden=(30, 30), activation: str = "tanh", seed: int = 0) -> "Model":
        """A model with Glorot-initialised weights, identity standardisation and zero reference energies."""
        mlp.activation_functions(activation)
        hidden = tuple(int(h) for h in hidden)
        if not hidden or min(hidden) < 1:
            raise ValueError(f"hidden layer widths must be ≥ 1 and at least one layer, got {hidden}")
        n_el, D = len(spec.elements), spec.n_features
        return cls(spec, hidden, activation, np.zeros((n_el, D)), np.ones((n_el, D)), np.zeros(n_el),
                   init_parameters(D, hidden, n_el, seed))

    @property
    def elements(self) -> tuple:
        return self.spec.elements

    @property
    def n_params(self) -> int:
        return self.theta.size

    def layers(self, e: int, theta: np.ndarray | None = None) -> list:
        """[(W_l, b_l), …] of element index e as views into ``theta`` (default: the model's)."""
        theta = self.theta if theta is None else theta
        s = layer_sizes(self.spec.n_features, self.hidden)
        pos = e * n_params_per_element(self.spec.n_features, self.hidden)
        out = []
        for k in range(len(s) - 1):
            W = theta[pos:pos + s[k] * s[k + 1]].reshape(s[k], s[k + 1])
            pos += s[k] * s[k + 1]
            out.append((W, theta[pos:pos + s[k + 1]]))
            pos += s[k + 1]
        return out


@dataclass(frozen=True)
class Batch:
    """Whole structures gathered for one evaluation; atoms numbered 0 … n-1 in batch order.

    structure_s (S,) indices into the dataset; atom_offset_s (S+1,); volume_s (S,) Å³ (0 without pbc);
    species_i, gidx_i, shift_i (n,) (see ``forces``); G_ig (n, D) raw descriptors; the descriptor
    derivative arrays (global, shared with ``describe.DatasetDescriptors``); targets energy_s (S,) eV,
    forces_ic (n, 3) eV/Å, stress_sv (S, 6) eV/Å³ (NaN where absent), has_stress_s (S,) bool;
    layout: the compact copy of dG/dr the fused kernels read (``forces.compact_layout``), or None to
    read the stored blocks.
    """

    structure_s: np.ndarray
    atom_offset_s: np.ndarray
    volume_s: np.ndarray
    species_i: np.ndarray
    gidx_i: np.ndarray
    shift_i: np.ndarray
    G_ig: np.ndarray
    block_first_i: np.ndarray
    block_j: np.ndarray
    dG_dr_bgc: np.ndarray
    dG_deps_igcc: np.ndarray
    energy_s: np.ndarray
    forces_ic: np.ndarray
    stress_sv: np.ndarray
    has_stress_s: np.ndarray
    layout: _forces.BlockLayout | None = None

    @property
    def n_atoms_s(self) -> np.ndarray:
        return np.diff(self.atom_offset_s)

    @property
    def structure_i(self) -> np.ndarray:
        """Batch structure index of every atom (n,)."""
        return np.repeat(np.arange(len(self.structure_s)), self.n_atoms_s)


def neighbour_feature_rows(spec: ACSFSpec) -> list:
    """[features a neighbour of element e can change]: the radial features of e and the angular (G4, G5)
    features of the element pairs that contain e (the feature order of ``acsf``)."""
    n_el, n_r = len(spec.elements), len(spec.radial)
    rows = [list(range(e * n_r, (e + 1) * n_r)) for e in range(n_el)]
    pos = n_el * n_r
    for params in (spec.angular, spec.angular_g5):
        for a, b in spec.element_pairs():
            for e in {a, b}:
                rows[e].extend(range(pos, pos + len(params)))
            pos += len(params)
    if pos != spec.n_features:
        raise AssertionError(f"feature count {pos} differs from spec.n_features {spec.n_features}")
    return [np.array(sorted(r), np.int64) for r in rows]


#: Compact layouts of stored dG/dr arrays, built once per array: (id, dtype) → (weak reference, layout).
_LAYOUTS: dict = {}


def derivative_layout(descriptors, species_i_global: np.ndarray, dtype="float64"):
    """The compact copy of ``descriptors.dG_dr_bgc`` (``forces.compact_layout``), built at the first call
    for that array and kept while the array lives (None only if the stored blocks defy the layout).

    Memory, in addition to the stored blocks: about Dc/D of them plus 17 bytes per block (two elements:
    29.1 KiB per atom beside the 49.5 KiB stored at D = 50; one element: as much as the stored blocks,
    reordered); ``estimate_training_derivative_bytes`` counts it. ``dtype="float32"`` halves it and rounds dG/dr to 6e-8 relative: for training only,
    never for predictions that are reported.
    """
    dG = descriptors.dG_dr_bgc
    if dG is None or len(dG) == 0:
        return None
    key = (id(dG), np.dtype(dtype).str)
    hit = _LAYOUTS.get(key)
    if hit is not None and hit[0]() is dG:
        return hit[1]
    spec = getattr(descriptors, "spec", None)
    if spec is not None:
        n_el, rows_e = len(spec.elements), neighbour_feature_rows(spec)
    else:
        n_el, rows_e = (int(species_i_global.max()) + 1 if len(species_i_global) else 1), None
    layout = _forces.compact_layout(descriptors.block_first_i, descriptors.block_j, dG, species_i_global, n_el,
                                    np.dtype(dtype), rows_e)
    _LAYOUTS[key] = (weakref.ref(dG), layout)
    weakref.finalize(dG, _LAYOUTS.pop, key, None)
    return layout


def estimate_training_derivative_bytes(dataset, spec: ACSFSpec, sample: int = 32, seed: int = 0) -> float:
    """Estimated bytes of descriptor derivatives that training on the whole ``dataset`` keeps in memory:
    the stored dG/dr blocks, their indices and dG/dε (``describe.DatasetDescriptors.derivative_bytes_per_atom``)
    plus the float64 compact copy the fused kernels read (``derivative_layout``: blocks, atom and centre
    indices; at D = 50 about 60 % of the stored bytes with two elements, 100 % with one).

    Measured exactly on a seeded sample of up to ``sample`` structures (``describe.sample_descriptors``)
    and scaled by atom count. Not counted: G itself, batches, and the index temporaries while the copy is
    built (up to ~60 bytes per block, under 10 % of the copy).
    """
    from .describe import sample_descriptors

    picked = sample_descriptors(dataset, spec, sample, seed)
    if picked is None:
        return 0.0
    sub, desc = picked
    layout = derivative_layout(desc, spec.species_index(sub.numbers))
    per_atom = desc.derivative_bytes_per_atom + (layout.nbytes if layout is not None else 0) / max(len(desc.G_ig), 1)
    return per_atom * float(dataset.n_atoms.sum())


def make_batch(dataset, descriptors, structures, species_i_global: np.ndarray,
               compact: str | None = "float64") -> Batch:
    """Gather ``structures`` (indices) of ``dataset`` with their ``descriptors`` into a Batch.

    species_i_global : (N,) species index of every atom of the dataset (``spec.species_index``).
    compact : "float64" (default) to let the kernels read the dataset's compact copy of dG/dr
    (``derivative_layout``, same numbers, fewer bytes), "float32" for a rounded copy (training only),
    or None to read the stored blocks.
    """
    if compact not in ("float64", "float32", None):
        raise ValueError(f"compact must be 'float64', 'float32' or None, got {compact!r}")
    structures = np.asarray(structures, np.int64)
    off = dataset.atom_offset
    n_s = dataset.n_atoms[structures]
    local_off = np.concatenate(([0], np.cumsum(n_s))).astype(np.int64)
    gidx = np.concatenate([np.arange(off[s], off[s + 1]) for s in structures]).astype(np.int64) \
        if len(structures) else np.zeros(0, np.int64)
    shift = np.repeat(local_off[:-1] - off[structures], n_s).astype(np.int64)
    cells = dataset.cell[structures]
    volume = np.where(dataset.pbc[structures].any(axis=1), np.abs(np.linalg.det(cells)), 0.0)
    return Batch(structures, local_off, volume, species_i_global[gidx], gidx, shift,
                 descriptors.G_ig[gidx], descriptors.block_first_i, descriptors.block_j,
                 descriptors.dG_dr_bgc, descriptors.dG_deps_igcc, dataset.energy[structures],
                 dataset.forces[gidx], dataset.stress[structures], dataset.has_stress[structures],
                 None if compact is None else derivative_layout(descriptors, species_i_global, compact))


def load_batch(dataset, spec: ACSFSpec, structures, species_i_global: np.ndarray, descriptors=None) -> Batch:
    """``make_batch`` from precomputed ``descriptors`` or, when they are None, from descriptors and
    derivatives recomputed for just these structures (for datasets whose derivatives exceed the
    memory budget). Both give the same numbers: each structure's descriptors depend on it alone.
    """
    if descriptors is not None:
        return make_batch(dataset, descriptors, structures, species_i_global)
    from .describe import compute_descriptors

    structures = np.asarray(structures, np.int64)
    sub = dataset.subset(structures)
    # the batch's own compact copy: same rows (from the spec) and arithmetic as the dataset's, bit for bit
    batch = make_batch(sub, compute_descriptors(sub, spec), np.arange(len(sub)), spec.species_index(sub.numbers))
    return replace(batch, structure_s=structures)


@dataclass(frozen=True)
class Prediction:
    """Model output for a batch: energy_s (S,) eV, energies_i (n,) eV, forces_ic (n, 3) eV/Å,
    stress_sv (S, 6) eV/Å³ ASE sign Voigt (NaN for structures without a volume)."""

    energy_s: np.ndarray
    energies_i: np.ndarray
    forces_ic: np.ndarray
    stress_sv: np.ndarray


@dataclass(frozen=True)
class _Forward:
    """Per-element intermediate arrays kept between the prediction and the gradient pass."""

    rows_e: list          # atom indices of each element
    x_e: list             # standardised inputs
    a_e: list             # pre-activations per layer
    z_e: list             # activations per layer
    dE_dG_ig: np.ndarray  # (n, D) ∂E_i/∂G_i, eV
    sd_e: list            # σ'(a_l) per layer (``mlp.activation_slopes``), or None without the input gradient


def _forward(model: Model, batch: Batch, need_input_gradient: bool):
    n, D = batch.G_ig.shape
    E_i = np.zeros(n)
    dE_dG = np.zeros((n, D))
    rows_e, x_e, a_e, z_e, sd_e = [], [], [], [], []
    for e in range(len(model.elements)):
        rows = np.flatnonzero(batch.species_i == e)
        rows_e.append(rows)
        x = (batch.G_ig[rows] - model.g_mean_eg[e]) / model.g_scale_eg[e]
        layers = model.layers(e)
        y, a_list, z_list = mlp.forward(layers, x, model.activation)
        E_i[rows] = model.e_ref_e[e] + y
        sd_list = None
        if need_input_gradient and len(rows):
            sd_list = mlp.activation_slopes(a_list, z_list, model.activation)
            dE_dG[rows] = mlp.input_gradient(layers, a_list, model.activation, sd_list) / model.g_scale_eg[e]
        sd_e.append(sd_list)
        x_e.append(x)
        a_e.append(a_list)
        z_e.append(z_list)
    return E_i, _Forward(rows_e, x_e, a_e, z_e, dE_dG, sd_e)


def voigt(tensor_scc: np.ndarray) -> np.ndarray:
    """(S, 3, 3) → (S, 6) in Voigt order xx yy zz yz xz xy (units unchanged)."""
    return np.stack([tensor_scc[:, a, b] for a, b in VOIGT_PAIRS], axis=1)


def _energy_s(batch: Batch, E_i: np.ndarray) -> np.ndarray:
    """Structure energies Σ_i E_i (S,) eV; 0 for an empty structure."""
    S = len(batch.structure_s)
    energy_s = np.add.reduceat(E_i, batch.atom_offset_s[:-1]) if len(E_i) else np.zeros(S)
    return np.where(batch.n_atoms_s > 0, energy_s, 0.0)


def _stress_voigt(batch: Batch, W_scc: np.ndarray) -> np.ndarray:
    """σ = W / V (S, 6) eV/Å³ Voigt (Eq. 3); NaN for structures without a volume."""
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma_scc = np.where(batch.volume_s[:, None, None] > 0, W_scc / batch.volume_s[:, None, None], np.nan)
    return voigt(sigma_scc)


def predict_batch(model: Model, batch: Batch, forces_and_stress: bool = True):
    """Energies (Eq. 1), forces (Eq. 2) and stress (Eq. 3) of every structure of ``batch``.

    Returns (Prediction, intermediates for ``loss_gradient``).
    """
    E_i, fwd = _forward(model, batch, forces_and_stress)
    S = len(batch.structure_s)
    energy_s = _energy_s(batch, E_i)
    if not forces_and_stress:
        nan = np.full((S, 6), np.nan)
        return Prediction(energy_s, E_i, np.full((len(E_i), 3), np.nan), nan), fwd
    if batch.layout is not None and S >= numba.get_num_threads():
        # the compact copy, one structure per thread (fewer bytes than the stored blocks)
        F_ic, W_scc, _, _ = _forces.forces_virials_adjoints(
            fwd.dE_dG_ig, batch.atom_offset_s, batch.gidx_i, batch.shift_i, batch.layout, batch.dG_deps_igcc,
            batch.forces_ic, batch.stress_sv, batch.volume_s, False, np.zeros(S, bool))
    else:  # the stored blocks, atoms in parallel (also for one large structure)
        F_ic, W_icc = _forces.forces_and_virials(fwd.dE_dG_ig, batch.gidx_i, batch.shift_i, batch.block_first_i,
                                                 batch.block_j, batch.dG_dr_bgc, batch.dG_deps_igcc)
        W_scc = np.zeros((S, 3, 3))
        np.add.at(W_scc, batch.structure_i, W_icc)
    return Prediction(energy_s, E_i, F_ic, _stress_voigt(batch, W_scc)), fwd


def _layout(batch: Batch) -> _forces.BlockLayout:
    """The blocks the fused kernel reads: the batch's compact copy, else the stored blocks."""
    if batch.layout is not None:
        return batch.layout
    return _forces.stored_layout(batch.block_first_i, batch.block_j, batch.dG_dr_bgc)


def predict_with_adjoints(model: Model, batch: Batch, force_adjoint: bool, stress_adjoint: bool):
    """``predict_batch`` plus the unscaled descriptor adjoints of the force and stress residuals, in one
    visit of each structure's derivative blocks (``forces.forces_virials_adjoints``, issue 15):

        vF_ig = −Σ_j (∂G_i/∂r_j)ᵀ (F_j − F_ref,j),   vS_ig = ∂G_i/∂ε : (σ_s − σ_ref,s) / V_s

    (vS only for structures with a stress target and a volume). For a loss whose adjoints are
    ∂L/∂F = α_F (F − F_ref) and ∂L/∂σ = α_S (σ − σ_ref), v = α_F vF + α_S vS is the adjoint that
    ``parameter_gradient`` takes. Returns (Prediction, fwd, vF (n, D) or None, vS (n, D) or None).
    """
    E_i, fwd = _forward(model, batch, True)
    with_stress = bool(stress_adjoint) and bool(np.any(batch.has_stress_s & (batch.volume_s > 0)))
    F_ic, W_scc, vF, vS = _forces.forces_virials_adjoints(
        fwd.dE_dG_ig, batch.atom_offset_s, batch.gidx_i, batch.shift_i, _layout(batch), batch.dG_deps_igcc,
        batch.forces_ic, batch.stress_sv, batch.volume_s, force_adjoint, batch.has_stress_s & with_stress)
    pred = Prediction(_energy_s(batch, E_i), E_i, F_ic, _stress_voigt(batch, W_scc))
    return pred, fwd, (vF if force_adjoint else None), (vS if with_stress else None)


def loss_gradient(model: Model, batch: Batch, fwd: _Forward, dL_dE_s, dL_dF_ic, dL_dsigma_sv) -> np.ndarray:
    """∂L/∂θ (flat, like ``model.theta``) from the adjoints of a loss L(E, F, σ).

    dL_dE_s : (S,) per eV;  dL_dF_ic : (n, 3) per eV/Å, or None;  dL_dsigma_sv : (S, 6) per eV/Å³
    (Voigt, as ``predict_batch`` returns σ), or None. Derivation:
      ∂L/∂E_i = ∂L/∂E_s(i)  (u_i, energy chain);
      Ŵ_i = ∂L/∂σ_s(i) / V_s(i) as a 3×3 (component (a, b) of each Voigt entry, the pair σ is read from);
      v_i = −Σ_j (∂G_i/∂r_j)ᵀ ∂L/∂F_j + ∂G_i/∂ε : Ŵ_i   (``forces.descriptor_adjoint``);
      t_i = v_i / s_{Z_i} (descriptor → standardised input space, since ∂E_i/∂G_i = (∂NN/∂x_i) / s);
      ∂L/∂θ = Σ_i ∂/∂θ [u_i NN(x_i) + t_i · ∂NN/∂x_i]   (``mlp.parameter_gradient``).
    """
    n = len(batch.species_i)
    u_i = np.asarray(dL_dE_s, float)[batch.structure_i]
    with_tangent = dL_dF_ic is not None or dL_dsigma_sv is not None
    v_ig = None
    if with_tangent:
        Fbar = np.zeros((n, 3)) if dL_dF_ic is None else np.asarray(dL_dF_ic, float)
        What_scc = np.zeros((len(batch.structure_s), 3, 3))
        if dL_dsigma_sv is not None:
            inv_v = np.where(batch.volume_s > 0, 1.0 / np.where(batch.volume_s > 0, batch.volume_s, 1.0), 0.0)
            for k, (a, b) in enumerate(VOIGT_PAIRS):
                What_scc[:, a, b] = np.asarray(dL_dsigma_sv, float)[:, k] * inv_v
        v_ig = _forces.descriptor_adjoint(Fbar, What_scc[batch.structure_i], batch.gidx_i, batch.shift_i,
                                          batch.block_first_i, batch.block_j, batch.dG_dr_bgc, batch.dG_deps_igcc)
    return parameter_gradient(model, batch, fwd, u_i, v_ig)


def parameter_gradient(model: Model, batch: Batch, fwd: _Forward, u_i: np.ndarray, v_ig) -> np.ndarray:
    """∂L/∂θ (flat) = Σ_i ∂/∂θ [u_i NN(x_i) + t_i · ∂NN/∂x_i] with t_i = v_i / s_{Z_i}
    (``mlp.parameter_gradient``).

    u_i : (n,) ∂L/∂E_i per eV;  v_ig : (n, D) ∂L/∂(∂E_i/∂G_ig) per eV, or None (energy term only).
    """
    with_tangent = v_ig is not None
    grad = np.zeros_like(model.theta)
    for e in range(len(model.elements)):
        rows = fwd.rows_e[e]
        if not len(rows):
            continue
        t = v_ig[rows] / model.g_scale_eg[e] if with_tangent else None
        grads = mlp.parameter_gradient(model.layers(e), fwd.a_e[e], fwd.z_e[e], u_i[rows], t, model.activation,
                                       fwd.sd_e[e])
        for (dW, db), (W, b) in zip(grads, model.layers(e, grad)):
            W += dW
            b += db
    return grad


def structure_batch(model: Model, numbers, positions, cell, pbc, derivatives: bool = True) -> Batch:
    """A one-structure Batch (no targets: NaN) with descriptors computed by ``acsf.compute_acsf``.

    SpecError if the structure holds an element the model has no network for.
    """
    numbers = np.asarray(numbers, np.int64)
    species = model.spec.species_index(numbers)
    res = compute_acsf(model.spec, numbers, np.asarray(positions, float), np.asarray(cell, float),
                       np.asarray(pbc, bool), derivatives=derivatives)
    n = len(numbers)
    volume = abs(float(np.linalg.det(cell))) if np.any(pbc) else 0.0
    return Batch(np.zeros(1, np.int64), np.array([0, n], np.int64), np.array([volume]), species,
                 np.arange(n, dtype=np.int64), np.zeros(n, np.int64), res.G_ig, res.block_first_i,
                 res.block_j, res.dG_dr_bgc, res.dG_deps_igcc, np.full(1, np.nan), np.full((n, 3), np.nan),
                 np.full((1, 6), np.nan), np.zeros(1, bool))


def predict_structure(model: Model, numbers, positions, cell, pbc, forces_and_stress: bool = True) -> Prediction:
    """E (eV), per-atom energies (eV), F (eV/Å) and σ (eV/Å³, ASE sign, Voigt; NaN without pbc) of one structure."""
    batch = structure_batch(model, numbers, positions, cell, pbc, derivatives=forces_and_stress)
    return predict_batch(model, batch, forces_and_stress)[0]
