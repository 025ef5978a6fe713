"""The warehouse schema: a warehouse made before snapshots carried their counts is brought up to
date by the first writing connection, and then counts as a fresh one would."""
import duckdb

from pipelines.core.workspace import Workspace
from pipelines.warehouse.connection import open_warehouse

OLD_TABLES = """
CREATE TABLE raw_inventory (snapshot_id VARCHAR NOT NULL, row_number INTEGER NOT NULL,
    serial VARCHAR, mac VARCHAR, model VARCHAR, site VARCHAR, room VARCHAR,
    lens_device_id VARCHAR, device_name VARCHAR, extra_json VARCHAR);
CREATE TABLE snapshots (snapshot_id VARCHAR NOT NULL, customer_id VARCHAR NOT NULL,
    month VARCHAR NOT NULL, receipt_seq BIGINT NOT NULL, received_at TIMESTAMP NOT NULL,
    source VARCHAR NOT NULL, source_name VARCHAR NOT NULL, sha256 VARCHAR,
    row_count INTEGER NOT NULL);
INSERT INTO raw_inventory VALUES
    ('s1', 2, ' sn1 ', NULL, 'Poly Studio X30', NULL, NULL, NULL, NULL, '{}'),
    ('s1', 3, NULL, '00:04:f2:aa:bb:cc', 'Polycom  VVX 450', NULL, NULL, NULL, NULL, '{}'),
    ('s1', 4, 'N/A', NULL, 'Poly Trio 8800', NULL, NULL, NULL, NULL, '{}');
INSERT INTO snapshots VALUES ('s1', 'acme', '2026-03', 1, '2026-04-01', 'lens_csv', 'x.csv',
    'abc', 3);
"""


def test_an_older_warehouse_gets_its_counts_once(tmp_path):
    workspace = Workspace.resolve(tmp_path)
    old = duckdb.connect(str(workspace.warehouse))
    old.execute(OLD_TABLES)
    old.close()
    with open_warehouse(workspace) as con:
        # The staging table is made after the migrations: raw_inventory's columns as they are.
        staged = [column[0] for column in con.execute("FROM staged_inventory").description]
        assert "extra_json" not in staged
        assert staged == [column[0] for column in con.execute("FROM raw_inventory").description]
        assert con.execute("SELECT devices FROM snapshots").fetchall() == [(2,)]
        assert sorted(con.execute("SELECT model_key, devices FROM snapshot_models").fetchall()) \
            == [("studio x30", 1), ("vvx 450", 1)]  # the N/A serial has no identity
        assert sorted(r[0] for r in con.execute("SELECT model_key FROM seen_models").fetchall()) \
            == ["studio x30", "trio 8800", "vvx 450"]
        assert con.execute("SELECT identity FROM snapshot_devices ORDER BY identity").fetchall() \
            == [("MAC:0004F2AABBCC",), ("SN:SN1",)]
    with open_warehouse(workspace) as con:  # the second time, nothing changes
        assert con.execute("SELECT count(*) FROM seen_models").fetchone()[0] == 3
        assert con.execute("SELECT count(*) FROM snapshot_models").fetchone()[0] == 2
