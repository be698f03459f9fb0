"""ACSF descriptors and their derivatives (being implemented; see the issue for the contract)."""
