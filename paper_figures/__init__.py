"""Scripts that regenerate the paper's tables and figures (issue 5); see paper_figures/README.md."""
