"""Chemical symbols ↔ atomic numbers (1–118), so alw_ref needs no ASE for them."""

from .errors import DataError

#: CHEMICAL_SYMBOLS[Z] is the symbol of atomic number Z; index 0 is a placeholder.
CHEMICAL_SYMBOLS = (
    "X", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na",
    "Mg", "Al", "Si", "P", "S", "Cl", "Ar", "K", "Ca", "Sc", "Ti", "V",
    "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br",
    "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag",
    "Cd", "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr",
    "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu",
    "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi",
    "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am",
    "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh",
    "Hs", "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og",
)

#: Atomic number of each symbol.
ATOMIC_NUMBERS = {s: z for z, s in enumerate(CHEMICAL_SYMBOLS) if z > 0}


def atomic_number(element):
    """Atomic number of ``element`` (a symbol such as "Mo" or an int 1–118); DataError otherwise."""
    if isinstance(element, str):
        if element not in ATOMIC_NUMBERS:
            raise DataError(f"unknown element symbol {element!r}")
        return ATOMIC_NUMBERS[element]
    z = int(element)
    if not 1 <= z <= 118 or z != element:
        raise DataError(f"unknown element: atomic number {element!r} is not an integer in 1..118")
    return z


def chemical_symbol(z):
    """Symbol of atomic number ``z`` (1–118); DataError otherwise."""
    return CHEMICAL_SYMBOLS[atomic_number(z)]
