"""PyTorch autograd (double-backward) implementation of the alw_ref network, for benchmarks and cross-checks.

An independent path to the same numbers as ``alw_ref.model`` / ``alw_ref.loss``: nothing below uses
alw_ref's hand-written derivatives; only autograd. It computes, for a batch of whole structures with
precomputed descriptors G and derivatives dG/dr, dG/dε,

    x_i   = (G_i − μ_{Z_i}) / s_{Z_i},   E_i = ε_{Z_i} + NN_{Z_i}(x_i),   E_s = Σ_{i∈s} E_i      (paper Eq. 1)
    g_i   = ∂E_i/∂G_i                    autograd.grad(Σ_i E_i, G, create_graph=True)
    F_j   = −Σ_b [block atom j] Σ_g g_{i_b,g} dG_dr[b,g,:]    (index_add_ over blocks; paper Eq. 2)
    W_i   = Σ_g g_ig dG_deps[i,g,:,:],   σ_s = Σ_{i∈s} W_i / V_s   eV/Å³, ASE sign (paper Eq. 3)
    L     = w_E L_E + w_F L_F + w_S L_S  (alw_ref.loss: RMSE or MSE; E per atom eV/atom, F eV/Å, σ GPa)
    ∂L/∂θ = autograd.grad(L, θ)          (second-order: through g_i, hence ``create_graph=True``)

The gradient is returned flat in alw_ref's θ layout (element-major, then layer, W before b;
W_l (n_in, n_out) row-major), so it compares directly with ``alw_ref.loss.loss_and_gradient``.

Arrays (batch-local, atoms 0 … n-1 in batch order, float64 unless stated):
    G_ig (n, D) raw descriptors; species_i (n,) int64 element index; structure_i (n,) int64;
    block_centre_b, block_atom_b (n_blocks,) int64: centre i and atom j of each dG/dr block;
    dG_dr_bgc (n_blocks, D, 3) Å⁻¹; dG_deps_igcc (n, D, 3, 3); volume_s (S,) Å³ (0: no stress);
    targets energy_s (S,) eV, forces_ic (n, 3) eV/Å, stress_sv (S, 6) eV/Å³, has_stress_s (S,) bool.

Not part of the package (``alw_ref`` has no torch dependency); needs the ``bench`` extra (torch==2.13.0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# Own constants, not imported from the package's units module (a cross-check must not share what it checks):
#: 1 eV/Å³ in GPa from the SI definitions: e = 1.602176634e-19 J (exact), 1 Å³ = 1e-30 m³, 1 GPa = 1e9 Pa.
EV_PER_A3_IN_GPA = 1.602176634e-19 / 1e-30 / 1e9
#: ASE's Voigt order of a stress 6-vector (ase.stress.full_3x3_to_voigt_6_stress): xx yy zz yz xz xy.
VOIGT = "xx yy zz yz xz xy".split()
_VOIGT_A = ["xyz".index(c[0]) for c in VOIGT]
_VOIGT_B = ["xyz".index(c[1]) for c in VOIGT]


def _t(array, dtype=torch.float64) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).to(dtype)


def _softplus(a):
    """ln(1 + e^a) without overflow and without torch's linear cut-off at a > 20 (not exact in float64)."""
    return torch.clamp(a, min=0.0) + torch.log1p(torch.exp(-a.abs()))


#: Activation name (as in ``alw_ref.mlp.ACTIVATIONS``) → torch function.
ACTIVATIONS = {"tanh": torch.tanh, "softplus": _softplus, "silu": torch.nn.functional.silu}


@dataclass
class TorchModel:
    """Per-element networks as leaf tensors: params[e] = [(W_l (n_in, n_out), b_l (n_out,)), …],
    requires_grad; g_mean_eg, g_scale_eg (n_el, D); e_ref_e (n_el,) eV/atom; activation name."""

    params: list
    g_mean_eg: torch.Tensor
    g_scale_eg: torch.Tensor
    e_ref_e: torch.Tensor
    activation: str

    @classmethod
    def from_model(cls, model) -> "TorchModel":
        """Copy an ``alw_ref.model.Model`` (its θ, standardisation and reference energies)."""
        if model.activation not in ACTIVATIONS:
            raise ValueError(f"no torch activation for {model.activation!r}")
        params = [[(_t(W).requires_grad_(True), _t(b).requires_grad_(True)) for W, b in model.layers(e)]
                  for e in range(len(model.elements))]
        return cls(params, _t(model.g_mean_eg), _t(model.g_scale_eg), _t(model.e_ref_e), model.activation)

    def leaves(self) -> list:
        """Parameter tensors in alw_ref's θ order."""
        return [p for layers in self.params for W, b in layers for p in (W, b)]

    def flat(self, tensors) -> np.ndarray:
        """Concatenate tensors shaped like ``leaves()`` into a flat float64 vector (θ layout)."""
        return torch.cat([t.reshape(-1) for t in tensors]).detach().numpy()


@dataclass
class TorchBatch:
    """The batch-local tensors of the module docstring, plus the atom rows of each element."""

    G_ig: torch.Tensor
    rows_e: list
    structure_i: torch.Tensor
    n_atoms_s: torch.Tensor
    block_centre_b: torch.Tensor
    block_atom_b: torch.Tensor
    dG_dr_bgc: torch.Tensor
    dG_deps_igcc: torch.Tensor
    volume_s: torch.Tensor
    energy_s: torch.Tensor
    forces_ic: torch.Tensor
    stress_sv: torch.Tensor
    has_stress_s: torch.Tensor

    @classmethod
    def from_arrays(cls, G_ig, species_i, structure_i, n_structures, block_centre_b, block_atom_b,
                    dG_dr_bgc, dG_deps_igcc, volume_s, energy_s, forces_ic, stress_sv, has_stress_s,
                    n_elements) -> "TorchBatch":
        """Tensors from the batch-local numpy arrays of the module docstring (copies)."""
        species_i = np.asarray(species_i, np.int64)
        structure_i = np.asarray(structure_i, np.int64)
        return cls(
            _t(G_ig), [_t(np.flatnonzero(species_i == e), torch.int64) for e in range(n_elements)],
            _t(structure_i, torch.int64),
            _t(np.bincount(structure_i, minlength=n_structures), torch.float64),
            _t(block_centre_b, torch.int64), _t(block_atom_b, torch.int64), _t(dG_dr_bgc), _t(dG_deps_igcc),
            _t(volume_s), _t(energy_s), _t(forces_ic), _t(stress_sv), _t(has_stress_s, torch.bool))

    @classmethod
    def from_batch(cls, batch, n_elements: int) -> "TorchBatch":
        """From an ``alw_ref.model.Batch``: gathers its atoms' dG/dr blocks and dG/dε into dense local tensors.

        A Batch refers to the dataset's global derivative arrays: atom i (global index gidx_i[i]) owns
        blocks block_first_i[g]:block_first_i[g+1], whose atom is block_j[b] + shift_i[i] in the batch.
        """
        first = batch.block_first_i
        starts, stops = first[batch.gidx_i], first[batch.gidx_i + 1]
        counts = stops - starts
        blocks = (np.concatenate([np.arange(a, b) for a, b in zip(starts, stops)])
                  if len(counts) else np.zeros(0, np.int64))
        centre_b = np.repeat(np.arange(len(counts)), counts)
        atom_b = batch.block_j[blocks] + batch.shift_i[centre_b]
        return cls.from_arrays(batch.G_ig, batch.species_i, batch.structure_i, len(batch.structure_s),
                               centre_b, atom_b, batch.dG_dr_bgc[blocks], batch.dG_deps_igcc[batch.gidx_i],
                               batch.volume_s, batch.energy_s, batch.forces_ic, batch.stress_sv,
                               batch.has_stress_s, n_elements)


@dataclass
class TorchPrediction:
    """energy_s (S,) eV, energies_i (n,) eV, forces_ic (n, 3) eV/Å, stress_sv (S, 6) eV/Å³ (0 where V = 0)."""

    energy_s: torch.Tensor
    energies_i: torch.Tensor
    forces_ic: torch.Tensor
    stress_sv: torch.Tensor


def atomic_energies(tm: TorchModel, tb: TorchBatch, G_ig: torch.Tensor) -> torch.Tensor:
    """E_i = ε_{Z_i} + NN_{Z_i}((G_i − μ)/s), (n,) eV (paper Eq. 1), one dense pass per element."""
    act = ACTIVATIONS[tm.activation]
    E_i = torch.zeros(G_ig.shape[0], dtype=torch.float64)
    for e, layers in enumerate(tm.params):
        rows = tb.rows_e[e]
        if rows.numel() == 0:
            continue
        z = (G_ig[rows] - tm.g_mean_eg[e]) / tm.g_scale_eg[e]
        for W, b in layers[:-1]:
            z = act(torch.addmm(b, z, W))
        W, b = layers[-1]
        E_i = E_i.index_add(0, rows, torch.addmm(b, z, W)[:, 0] + tm.e_ref_e[e])
    return E_i


def predict(tm: TorchModel, tb: TorchBatch, create_graph: bool = False) -> TorchPrediction:
    """E, F (paper Eq. 2) and σ (paper Eq. 3) by autograd; ``create_graph`` keeps the graph of ∂E/∂G
    so that a loss of F and σ can be differentiated with respect to the parameters (double backward)."""
    G_ig = tb.G_ig.detach().requires_grad_(True)
    E_i = atomic_energies(tm, tb, G_ig)
    # E_i depends on G_i only, so the gradient of Σ_i E_i is ∂E_i/∂G_i row by row.
    (g_ig,) = torch.autograd.grad(E_i.sum(), G_ig, create_graph=create_graph)
    S = tb.energy_s.shape[0]
    energy_s = torch.zeros(S, dtype=torch.float64).index_add(0, tb.structure_i, E_i)
    # c_b = Σ_g g_{i_b,g} dG_dr[b,g,:];  F_j = −Σ_{b: atom j} c_b.
    c_bc = torch.bmm(g_ig[tb.block_centre_b].unsqueeze(1), tb.dG_dr_bgc).squeeze(1)
    F_ic = -torch.zeros_like(tb.forces_ic).index_add(0, tb.block_atom_b, c_bc)
    W_icc = torch.einsum("ig,igab->iab", g_ig, tb.dG_deps_igcc)
    W_scc = torch.zeros(S, 3, 3, dtype=torch.float64).index_add(0, tb.structure_i, W_icc)
    inv_v = torch.where(tb.volume_s > 0, 1.0 / torch.where(tb.volume_s > 0, tb.volume_s, 1.0), 0.0)
    sigma_sv = W_scc[:, _VOIGT_A, _VOIGT_B] * inv_v[:, None]
    return TorchPrediction(energy_s, E_i, F_ic, sigma_sv)


def loss_terms(pred: TorchPrediction, tb: TorchBatch, form: str = "rmse") -> dict:
    """{component: L_k} as in ``alw_ref.loss``: E per atom (eV/atom), F components (eV/Å), σ Voigt (GPa).

    RMSE = √(mean r²), MSE = mean r²; an empty term is 0.
    """
    res = {
        "energy": (pred.energy_s - tb.energy_s) / tb.n_atoms_s,
        "forces": (pred.forces_ic - tb.forces_ic).reshape(-1),
        "stress": ((pred.stress_sv[tb.has_stress_s] - tb.stress_sv[tb.has_stress_s]) * EV_PER_A3_IN_GPA).reshape(-1),
    }
    out = {}
    for k, r in res.items():
        if r.numel() == 0:
            out[k] = torch.zeros((), dtype=torch.float64)
            continue
        mse = (r * r).mean()
        out[k] = mse if form == "mse" else torch.sqrt(mse)
    return out


def loss_and_gradient(tm: TorchModel, tb: TorchBatch, weights: dict, form: str = "rmse"):
    """(L, {component: L_k}, ∂L/∂θ flat in alw_ref's layout, TorchPrediction) by double backward."""
    pred = predict(tm, tb, create_graph=True)
    parts = loss_terms(pred, tb, form)
    total = sum(float(weights[k]) * parts[k] for k in ("energy", "forces", "stress"))
    grads = torch.autograd.grad(total, tm.leaves(), allow_unused=True)
    grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, tm.leaves())]
    return float(total.detach()), {k: float(v.detach()) for k, v in parts.items()}, tm.flat(grads), pred


def predict_numpy(tm: TorchModel, tb: TorchBatch) -> dict:
    """Prediction without a graph, as numpy arrays (keys energy_s, energies_i, forces_ic, stress_sv)."""
    pred = predict(tm, tb, create_graph=False)
    return {k: getattr(pred, k).detach().numpy() for k in ("energy_s", "energies_i", "forces_ic", "stress_sv")}
