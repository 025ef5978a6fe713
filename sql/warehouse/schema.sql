-- The warehouse schema. Applied (idempotently) by every writing connection.
-- Tables have no primary keys on purpose: partitions are replaced by DELETE + INSERT inside one
-- transaction, and DuckDB's unique indexes reject a key deleted and re-inserted in one transaction.

CREATE SEQUENCE IF NOT EXISTS receipt_seq START 1;

-- Every file the inbox ever handed us, and what became of it.
CREATE TABLE IF NOT EXISTS intake_log (
    receipt_seq   BIGINT    NOT NULL,  -- order of receipt: later = more recently received
    customer_id   VARCHAR,
    file_name     VARCHAR   NOT NULL,
    sha256        VARCHAR   NOT NULL,
    kind          VARCHAR   NOT NULL,  -- inventory | rma | unknown
    month         VARCHAR,             -- YYYY-MM from the name, else the modification time
    received_at   TIMESTAMP NOT NULL,  -- UTC
    outcome       VARCHAR   NOT NULL,  -- loaded | duplicate | quarantined
    stored_path   VARCHAR   NOT NULL,  -- where the file is now, relative to the workspace
    reason        VARCHAR,             -- English, as the command line shows it
    reason_message VARCHAR             -- the reason as i18n.Message JSON: shown in any language
);
-- Ledgers made before reasons were kept as messages: their older lines show the English text.
ALTER TABLE intake_log ADD COLUMN IF NOT EXISTS reason_message VARCHAR;

-- One inventory per customer and month per receipt; all are kept, the latest one counts.
CREATE TABLE IF NOT EXISTS snapshots (
    snapshot_id   VARCHAR   NOT NULL,
    customer_id   VARCHAR   NOT NULL,
    month         VARCHAR   NOT NULL,
    receipt_seq   BIGINT    NOT NULL,
    received_at   TIMESTAMP NOT NULL,
    source        VARCHAR   NOT NULL,  -- lens_csv | lens_api
    source_name   VARCHAR   NOT NULL,  -- file name, or the Lens tenant
    sha256        VARCHAR,
    row_count     INTEGER   NOT NULL,
    devices       INTEGER              -- distinct devices it lists (rows with identity and model)
);
-- Warehouses made before snapshots carried their device count get it (and their per-model
-- counts) once: sql/warehouse/count_older_snapshots.sql.
ALTER TABLE snapshots ADD COLUMN IF NOT EXISTS devices INTEGER;

-- Every inventory row as received, with its provenance: the fields the pipeline reads. The raw
-- layer itself is the archived file, byte for byte (its SHA-256 in snapshots); its other
-- columns stay there (interfaces.md).
CREATE TABLE IF NOT EXISTS raw_inventory (
    snapshot_id     VARCHAR NOT NULL,
    row_number      INTEGER NOT NULL,  -- spreadsheet row: the header is row 1
    serial          VARCHAR,
    mac             VARCHAR,
    model           VARCHAR,
    site            VARCHAR,
    room            VARCHAR,
    lens_device_id  VARCHAR,
    device_name     VARCHAR
);
-- Warehouses made when the unused columns were copied in as JSON: nobody read them.
ALTER TABLE raw_inventory DROP COLUMN IF EXISTS extra_json;

-- Distinct devices per snapshot and model (the device's representative model, as in
-- snapshot_devices), kept as snapshots are published: counting a month never scans raw rows.
CREATE TABLE IF NOT EXISTS snapshot_models (
    snapshot_id  VARCHAR NOT NULL,
    model_key    VARCHAR NOT NULL,
    devices      INTEGER NOT NULL
);

-- Every normalised model the raw layer holds, kept as snapshots are published: classifying
-- them (model_classes) never scans the raw layer.
CREATE TABLE IF NOT EXISTS seen_models (
    model_key  VARCHAR NOT NULL
);

-- Where an intake batch is read and audited before it is published (write-audit-publish):
-- per connection, so a crash or an unreadable file leaves nothing behind in the warehouse.
CREATE TEMP TABLE IF NOT EXISTS staged_inventory AS FROM raw_inventory LIMIT 0;
-- Beside it, the latest last-seen day of each staged export that has such dates: evidence of
-- the month it shows, read from its cells (intake/staging.py, intake/evidence.py).
CREATE TEMP TABLE IF NOT EXISTS staged_seen (snapshot_id VARCHAR NOT NULL, latest DATE);

-- A last-seen cell's day: ISO 8601 ("2026-11-14", "2026-11-14 08:00",
-- "2026-11-14T08:00:00.000Z" as Lens's API writes it, "2026/11/14") or German ("14.11.2026",
-- "14.11.2026 08:00"); null for anything else ("11/14/2026" reads either way round).
CREATE OR REPLACE MACRO seen_day(cell) AS
    try_strptime(split_part(split_part(trim(cell), ' ', 1), 'T', 1),
                 ['%Y-%m-%d', '%Y/%m/%d', '%d.%m.%Y'])::DATE;

-- A CSV cell as a field, trimmed as str.strip() trims: by DuckDB's plain trim() (the Unicode
-- spaces) unless the file holds other white space, then of every such character (`whitespace`,
-- slower); null where the export has no such column.
CREATE OR REPLACE MACRO export_field(cells, field_index, trimming, whitespace) AS
    CASE
        WHEN field_index = 0 THEN NULL
        WHEN trimming = 'spaces' THEN trim(cells[field_index])
        ELSE trim(cells[field_index], whitespace)
    END;

CREATE TABLE IF NOT EXISTS raw_rma (
    sha256       VARCHAR NOT NULL,
    customer_id  VARCHAR NOT NULL,
    file_name    VARCHAR NOT NULL,
    row_number   INTEGER NOT NULL,
    rma_number   VARCHAR,
    rma_date     VARCHAR,
    serial       VARCHAR,
    model        VARCHAR
);

-- The catalog in force at the last reconciliation (shipped rows + workspace overrides).
CREATE TABLE IF NOT EXISTS catalog (
    model           VARCHAR NOT NULL,
    category        VARCHAR NOT NULL,
    end_of_service  DATE,
    origin          VARCHAR NOT NULL,  -- shipped | workspace
    position        INTEGER NOT NULL   -- file order: of two rows for one model, the later wins
);

-- Results, one partition per report month.
CREATE TABLE IF NOT EXISTS reconciliation (
    customer_id          VARCHAR NOT NULL,
    month                VARCHAR NOT NULL,
    category             VARCHAR NOT NULL,
    status               VARCHAR NOT NULL,
    devices_counted      INTEGER,
    eol_excluded         INTEGER,
    ordered_devices      INTEGER,
    baseline             DECIMAL(18, 2),
    growth_pct           DECIMAL(18, 2),
    true_up_devices      INTEGER,
    prorated_amount      DECIMAL(18, 2),
    currency             VARCHAR,
    new_ordered_devices  INTEGER,
    new_baseline         DECIMAL(18, 2)
);

-- When each month was last reconciled: the latest receipt its result has seen. A snapshot of
-- that month or an earlier one received later makes the month stale (sql/reconcile/stale_months.sql).
CREATE TABLE IF NOT EXISTS reconciled_months (
    month            VARCHAR NOT NULL,
    through_receipt  BIGINT  NOT NULL
);
-- Warehouses reconciled before this table existed: their months count as up to date.
INSERT INTO reconciled_months
SELECT DISTINCT month, (SELECT coalesce(max(receipt_seq), 0) FROM snapshots)
FROM reconciliation
WHERE NOT EXISTS (SELECT 1 FROM reconciled_months);

-- Each month's result as `reconcile` computed it (pipelines/reconcile.py `result_json`): what
-- reports and e-mails read without recomputing the month (the DAG's render tasks, `send`).
CREATE TABLE IF NOT EXISTS month_results (
    month            VARCHAR NOT NULL,
    through_receipt  BIGINT  NOT NULL,
    result_json      VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS rma_results (
    customer_id   VARCHAR NOT NULL,
    month         VARCHAR NOT NULL,
    year          INTEGER NOT NULL,
    headset_rmas  INTEGER NOT NULL,
    headset_base  INTEGER NOT NULL,
    rma_rate_pct  DECIMAL(18, 2) NOT NULL,
    status        VARCHAR NOT NULL
);

-- What Lens writes into a field it has no value for ("Not Set", "Unknown"): read as empty.
CREATE OR REPLACE MACRO lens_value(cell) AS
    CASE WHEN lower(trim(cell)) NOT IN ('', 'not set', 'unknown', 'n/a', 'none', '-')
         THEN cell END;

-- interfaces.md: trimmed, inner white space collapsed, case ignored, leading Poly/Polycom dropped.
CREATE OR REPLACE MACRO normalize_model(model) AS
    nullif(regexp_replace(
        lower(regexp_replace(regexp_replace(lens_value(model), '^\s+|\s+$', '', 'g'), '\s+',
                             ' ', 'g')),
        '^(poly|polycom) ', ''), '');

-- What the catalog is matched on (interfaces.md, Catalog files): Lens spells one product
-- several ways ("Plantronics EncorePro 515 USB", "HP Poly Voyager ...", "G 7500 Video Endpoint"
-- beside the catalog's "G7500"), so every leading brand name (HP, Poly, Polycom, Plantronics)
-- and trademark sign is dropped and a space or hyphen between a letter and a digit removed, on
-- both sides. Only matching uses it: stored model keys stay normalize_model's.
CREATE OR REPLACE MACRO catalog_key(model_key) AS
    regexp_replace(
        regexp_replace(trim(regexp_replace(model_key, '[®™]', '', 'g')),
                       '^((hp|poly|polycom|plantronics) )+', ''),
        '([a-z])[ -]([0-9])', '\1\2', 'g');

-- A serial that says there is none ("N/A", "unknown", "0" ...) is no serial: taken as an
-- identity it would merge every such device into one.
CREATE OR REPLACE MACRO usable_serial(serial) AS
    CASE WHEN upper(trim(serial)) NOT IN ('', '-', '--', '?', '0', 'N/A', 'NA', 'N.A.', 'NONE',
                                          'NULL', 'UNKNOWN', 'TBD', 'NOT AVAILABLE', 'NOT SET')
         THEN upper(trim(serial)) END;

-- rules.md 2: serial (trimmed, upper-case), else MAC (12 hex digits once separators are
-- removed), else the Lens device id. Prefixed so a serial never collides with a MAC or id.
CREATE OR REPLACE MACRO device_identity(serial, mac, lens_device_id) AS
    CASE
        WHEN usable_serial(serial) IS NOT NULL THEN 'SN:' || usable_serial(serial)
        WHEN regexp_full_match(upper(regexp_replace(coalesce(mac, ''), '[\s:.\-]', '', 'g')),
                               '[0-9A-F]{12}')
            THEN 'MAC:' || upper(regexp_replace(mac, '[\s:.\-]', '', 'g'))
        WHEN lens_value(lens_device_id) IS NOT NULL THEN 'ID:' || trim(lens_device_id)
    END;

-- Why a raw inventory row does not count (null: it counts).
CREATE OR REPLACE MACRO inventory_reject_reason(identity, model_key) AS
    CASE
        WHEN identity IS NULL THEN 'no serial number, MAC address or Lens device id'
        WHEN model_key IS NULL THEN 'no model'
    END;

-- Every Lens API pull, complete or failed (a failed pull loads no rows).
CREATE TABLE IF NOT EXISTS lens_pulls (
    customer_id   VARCHAR   NOT NULL,
    tenant_id     VARCHAR   NOT NULL,
    month         VARCHAR   NOT NULL,
    started_at    TIMESTAMP NOT NULL,
    finished_at   TIMESTAMP NOT NULL,
    outcome       VARCHAR   NOT NULL,  -- loaded | failed
    devices       INTEGER   NOT NULL,
    snapshot_id   VARCHAR,
    error         VARCHAR
);

-- Data-quality findings per snapshot or RMA log (subject), as the GX suites reported them.
CREATE TABLE IF NOT EXISTS quality_checks (
    subject      VARCHAR NOT NULL,  -- a snapshot_id, or rma:<customer>/<sha256>
    customer_id  VARCHAR NOT NULL,
    month        VARCHAR NOT NULL,
    source_name  VARCHAR NOT NULL,
    check_name   VARCHAR NOT NULL,
    severity     VARCHAR NOT NULL,  -- rejected | warning | suspect
    passed       BOOLEAN NOT NULL,
    checked      INTEGER NOT NULL,
    failing      INTEGER NOT NULL,
    message      VARCHAR NOT NULL,  -- English, as the command line shows it
    message_json VARCHAR            -- the finding as i18n.Message JSON: shown in any language
);
-- Findings stored before they were kept as messages show their English text.
ALTER TABLE quality_checks ADD COLUMN IF NOT EXISTS message_json VARCHAR;

-- Every message composed, keyed by kind, customer, month and content: a re-run sends nothing
-- twice, and a message that could not go out stays queued for the next run.
CREATE TABLE IF NOT EXISTS mail_ledger (
    message_key  VARCHAR   NOT NULL,
    kind         VARCHAR   NOT NULL,  -- report | true_up | rma | missing_inventory |
                                      -- file_rejected | correction
    customer_id  VARCHAR,
    month        VARCHAR   NOT NULL,
    subject      VARCHAR   NOT NULL,
    recipients   VARCHAR   NOT NULL,
    status       VARCHAR   NOT NULL,  -- queued | sent | rejected
    attempts     INTEGER   NOT NULL,
    answer       VARCHAR,             -- the server's last answer, or who was refused
    queued_at    TIMESTAMP NOT NULL,
    sent_at      TIMESTAMP,
    message      BLOB      NOT NULL
);
-- What an alert is about (a true-up's category, "rma"): a later change to it sends a correction.
-- Messages queued before this column existed have none and are never corrected.
ALTER TABLE mail_ledger ADD COLUMN IF NOT EXISTS topic VARCHAR;
-- A report's table of figures (JSON): what an updated report of the month lists as changed.
ALTER TABLE mail_ledger ADD COLUMN IF NOT EXISTS figures VARCHAR;
