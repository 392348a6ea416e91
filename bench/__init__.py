"""The lab, outside the product: peers, side-by-side comparisons and benchmark scripts (`python -m bench.NAME`,
run from the repository root). Not installed with the package."""
