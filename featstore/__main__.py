"""``python -m featstore``. Prefer the ``featstore`` command: ``python -m`` puts the current
folder first on sys.path, where a folder of the user's own named like one of our packages
(``models/``, ``bench/``) would be imported in place of ours."""

import importlib.util
import sys
from pathlib import Path


def _exit_if_shadowed(prog: str, packages: tuple[str, ...]) -> None:
    """One line and exit 2, not an ImportError traceback, when one of this project's
    ``packages`` would be imported from another folder. Stdlib only, as it runs before any of
    them is imported; the same check is in bench/__main__.py."""
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


# only `eda` imports models: the other commands keep working beside a user's models/ folder
_exit_if_shadowed("featstore", ("models",) if sys.argv[1:2] == ["eda"] else ())

from featstore.cli import main  # noqa: E402 - only once our packages are known to be ours

sys.exit(main())
