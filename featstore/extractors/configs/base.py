"""What every extractor config shares: ``to_dict`` / ``from_dict`` (lhotse's pattern, so an
extractor is rebuilt from the parameters a store recorded), the ``CONFIGS`` registry, and the
command-line flag each settable field declares in its metadata (``flag``), from which
``featstore.cli.extract_args`` generates the flags of ``featstore build`` and ``add``.

No torch here: the CLI builds every subparser at startup, ``featstore info`` included."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import Field, dataclass, fields
from typing import Any, ClassVar

from featstore.errors import UserError


@dataclass(frozen=True)
class Flag:
    """A config field's command-line flag. ``help`` may hold ``{default}``, filled with the
    field's default as ``show_default`` writes it (or ``shown``, for a default such as None
    that the user never types)."""

    name: str  # "--f0-min"
    help: str
    type: Callable[[str], Any] | None = None  # argparse type (parses and checks one value)
    choices: tuple[str, ...] | None = None
    shown: str | None = None

    @property
    def dest(self) -> str:
        return self.name.removeprefix("--").replace("-", "_")


def flag(name: str, help: str, *, type: Callable[[str], Any] | None = None,
         choices: tuple[str, ...] | None = None, shown: str | None = None) -> dict[str, Flag]:
    """``dataclasses.field`` metadata giving a config field its flag."""
    return {"flag": Flag(name, help, type, choices, shown)}


def show_default(value: Any) -> str:
    """A default as help text prints it: 50.0 as 50, (0, 6) as 0,6, () as none."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return str(value)


class ExtractorConfig:
    """Base of each extractor's frozen config dataclass; validation is its ``__post_init__``
    (a ValueError, which callers report as a bad parameter of the feature)."""

    feature_type: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return {"feature_type": self.feature_type,
                **{f.name: getattr(self, f.name) for f in fields(self)}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExtractorConfig:
        """The config from a ``to_dict`` result or an extractor's recorded params (keys that
        are not fields, such as derived facts, are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v
                      for k, v in data.items() if k in names})

    @classmethod
    def flag_fields(cls) -> list[Field]:
        """The fields the command line sets."""
        return [f for f in fields(cls) if "flag" in f.metadata]


CONFIGS: dict[str, type[ExtractorConfig]] = {}


def register_config(cls: type[ExtractorConfig]) -> type[ExtractorConfig]:
    CONFIGS[cls.feature_type] = cls
    return cls


@contextmanager
def bad_parameter(name: str) -> Iterator[None]:
    """A ValueError from a config or an extractor of feature ``name`` as a one-line UserError."""
    try:
        yield
    except ValueError as exc:
        raise UserError(f"bad {name} parameter: {exc}") from None
