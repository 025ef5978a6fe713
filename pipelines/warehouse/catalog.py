"""The catalog in the warehouse: the rows its views classify models with
(sql/warehouse/views.sql)."""
from __future__ import annotations

import pandas as pd

from pipelines.core.catalog import CatalogRow
from pipelines.warehouse.connection import fetch_value, run_sql


def store_catalog(con, rows: list[CatalogRow]) -> None:
    """Make `rows` the catalog the warehouse's views classify models with (written only when
    it changed)."""
    frame = pd.DataFrame({
        "model": [r.model for r in rows], "category": [r.category for r in rows],
        "end_of_service": [r.end_of_service.isoformat() if r.end_of_service else None
                           for r in rows],
        "origin": [r.origin for r in rows], "position": list(range(len(rows)))})
    con.register("staged_rows", frame)
    try:
        if fetch_value(con, "warehouse/catalog_differs.sql"):
            run_sql(con, "warehouse/replace_catalog.sql")
    finally:
        con.unregister("staged_rows")
