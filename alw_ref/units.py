"""Units and conversion constants, each with its source.

Internal units everywhere in alw_ref: energy eV, length Å, force eV/Å, stress eV/Å³ (ASE sign:
σ = (1/V) ∂E/∂ε, positive = tensile; Voigt order xx yy zz yz xz xy). Reports use meV/atom,
meV/Å and GPa (or MPa); convert once, at the boundary, with these constants.
"""

#: 1 eV in joule, CODATA 2018 (exact since the 2019 SI redefinition).
EV_IN_J = 1.602176634e-19
#: 1 eV/Å³ in GPa: 1.602176634e-19 J / 1e-30 m³ = 1.602176634e11 Pa.
EV_PER_A3_TO_GPA = 160.2176634
#: 1 GPa in eV/Å³.
GPA_TO_EV_PER_A3 = 1.0 / EV_PER_A3_TO_GPA
#: 1 kbar = 0.1 GPa (VASP prints stresses in kbar).
KBAR_TO_GPA = 0.1
#: 1 kbar in eV/Å³.
KBAR_TO_EV_PER_A3 = KBAR_TO_GPA * GPA_TO_EV_PER_A3
#: eV → meV, for reports.
EV_TO_MEV = 1000.0
#: GPa → MPa, for reports.
GPA_TO_MPA = 1000.0

#: Voigt order of every 6-vector stress in alw_ref (ASE's): xx yy zz yz xz xy.
VOIGT_ORDER = ("xx", "yy", "zz", "yz", "xz", "xy")
#: (row, column) of each Voigt component in the 3×3 tensor.
VOIGT_PAIRS = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
