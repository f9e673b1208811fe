"""Regenerate docs/features.md from the feature registry: `python -m docs.generate`."""

from pathlib import Path

from features.registry import markdown_table

HEADER = """# Feature registry

Generated from `features/registry.py` by `python -m docs.generate`; a test fails when this file is
stale. Task tables use these features under roles: `supplier_*` / `importer_*` (import
substitution), `partner_a_*` / `partner_b_*` (joint projects) and `country_*` (diversification); pair-, flow- and product-level
features keep their names. Every value for year t uses data from years ≤ t only.

"""


def render() -> str:
    return HEADER + markdown_table() + "\n"


if __name__ == "__main__":
    (Path(__file__).parent / "features.md").write_text(render())
