"""``python -m bench``. Prefer the ``bench`` command: ``python -m`` puts the current
folder first on sys.path, where a folder of the user's own named like one of our packages
(``models/``, ``featstore/``) would be imported in place of ours."""

import importlib.util
import sys
from pathlib import Path


def _exit_if_shadowed(prog: str, packages: tuple[str, ...]) -> None:
    """One line and exit 2, not an ImportError traceback, when one of this project's
    ``packages`` would be imported from another folder. Stdlib only, as it runs before any of
    them is imported; the same check is in featstore/__main__.py."""
    root = Path(__file__).resolve().parents[1]
    for name in packages:
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        origin = spec.origin or next(iter(spec.submodule_search_locations or ()), ".")
        where = Path(origin).resolve()
        if where.name == "__init__.py":
            where = where.parent
        if where.parent != root:
            print(f"{prog}: error: {where} shadows this project's '{name}' package (python -m "
                  f"searches the current folder first); use the `{prog}` command instead, or "
                  "run from another folder", file=sys.stderr)
            sys.exit(2)


_exit_if_shadowed("bench", ("featstore", "models"))

from bench.cli import main  # noqa: E402 - only once our packages are known to be ours

sys.exit(main())
