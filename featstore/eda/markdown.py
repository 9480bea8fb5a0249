"""Markdown tables for the EDA report."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def md_table(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    from tabulate import tabulate

    return tabulate(df, headers="keys", tablefmt="github", showindex=False, floatfmt=floatfmt)
