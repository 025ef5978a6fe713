"""The catalog in the warehouse: the rows its views classify models with (sql/warehouse/views.sql)."""
from __future__ import annotations

import pandas as pd

from pipelines.core.catalog import CatalogRow
from pipelines.warehouse.connection import load_frame


def store_catalog(con, rows: list[CatalogRow]) -> None:
    """Make `rows` the catalog the warehouse's views classify models with."""
    load_frame(con, "warehouse/replace_catalog.sql", pd.DataFrame({
        "model": [r.model for r in rows], "category": [r.category for r in rows],
        "end_of_service": [r.end_of_service.isoformat() if r.end_of_service else None
                           for r in rows],
        "origin": [r.origin for r in rows], "position": list(range(len(rows)))}))
