-- The warehouse's tables, as a new warehouse gets them (migrations.sql brings an older one's up
-- to date). Applied (idempotently) by every writing connection, first; then migrations.sql,
-- rule_macros.sql and views.sql (pipelines/warehouse/connection.py, SCHEMA).
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
    device_name     VARCHAR,
    last_seen       VARCHAR   -- when Lens last saw it, as received (seen_day reads the day)
);

-- Distinct devices per snapshot and model (the device's representative model, as in
-- snapshot_devices), kept as snapshots are published: counting a month never scans raw rows.
CREATE TABLE IF NOT EXISTS snapshot_models (
    snapshot_id  VARCHAR NOT NULL,
    model_key    VARCHAR NOT NULL,
    devices      INTEGER NOT NULL
);

-- Distinct devices per snapshot, model and last-seen day (a device listed twice: its latest day),
-- for those with a last-seen day, kept as snapshots are published: counting the devices not
-- seen (rules.md "Devices not seen") never scans raw rows either. A snapshot without any has no
-- rows here: its last seen is not known.
CREATE TABLE IF NOT EXISTS snapshot_last_seen (
    snapshot_id  VARCHAR NOT NULL,
    model_key    VARCHAR NOT NULL,
    last_seen    DATE    NOT NULL,
    devices      INTEGER NOT NULL
);

-- Every normalised model the raw layer holds, kept as snapshots are published: classifying
-- them (model_classes) never scans the raw layer.
CREATE TABLE IF NOT EXISTS seen_models (
    model_key  VARCHAR NOT NULL
);

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

-- Each month's result as `reconcile` computed it (`result_json` in
-- pipelines/reconciliation/month.py): what reports and e-mails read without recomputing the
-- month (the DAG's render tasks, `send`).
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
    error         VARCHAR,
    region        VARCHAR              -- the tenant's Lens region (EU-1, US-1); NULL: not said
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
    status       VARCHAR   NOT NULL,  -- queued | sent | rejected | waiting (for approval) |
                                      -- withdrawn (composed again otherwise before approval)
                                      -- | carried (inside the correction `answer` names)
    attempts     INTEGER   NOT NULL,
    answer       VARCHAR,             -- the server's last answer, or who was refused
    queued_at    TIMESTAMP NOT NULL,
    sent_at      TIMESTAMP,
    message      BLOB      NOT NULL
);
