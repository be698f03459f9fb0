"""dataset.h5 read/write/validate/split (being implemented)."""
