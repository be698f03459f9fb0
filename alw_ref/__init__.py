"""alw_ref — reference Behler–Parrinello neural-network potential trained on energies, forces and
Cauchy stress with adaptive loss weighting (SoftAdapt).

Data flow, one module per step: ``data`` (dataset.h5) → ``neighbors`` (periodic neighbour list) →
``acsf`` (ACSF descriptors and their derivatives) → ``describe`` (whole-dataset driver and cache) →
``mlp`` / ``forces`` / ``model`` (energy Eq. 1, forces Eq. 2, stress Eq. 3, exact ∂L/∂θ) → ``loss``
(Eq. 4) → ``weighting`` (SoftAdapt Eqs. 6–7 and baselines) → ``optim`` (Adam) → ``train`` (CLI);
``potential`` and ``ase`` use a trained model.
Importing ``alw_ref`` compiles nothing and prints nothing: the Numba kernels compile (or load from
their on-disk cache) on first call.

Units everywhere: energy eV, length Å, force eV/Å, stress eV/Å³ (ASE sign, Voigt xx yy zz yz xz xy).
"""

__version__ = "0.1.0"
