-- Derived views over the raw layer, and the staging table shaped as it is. Applied last, after
-- tables.sql, migrations.sql and rule_macros.sql.

-- Where a batch of snapshots is read and audited before it is published (write-audit-publish):
-- per connection, so a crash or an unreadable file leaves nothing behind in the warehouse.
-- Made after the migrations, so it has raw_inventory's columns as they are now.
CREATE TEMP TABLE IF NOT EXISTS staged_inventory AS FROM raw_inventory LIMIT 0;
-- Beside it, the latest last-seen day of each staged export that has such dates: evidence of
-- the month it shows, read from its cells (intake/staging.py, intake/evidence.py).
CREATE TEMP TABLE IF NOT EXISTS staged_seen (snapshot_id VARCHAR NOT NULL, latest DATE);

-- rules.md 1: the month's snapshot is the most recently received one.
CREATE OR REPLACE VIEW month_snapshots AS
SELECT *
FROM snapshots
QUALIFY row_number() OVER (PARTITION BY customer_id, month ORDER BY receipt_seq DESC) = 1;

-- Every raw row with its identity and normalised model; a row without either is rejected.
-- (Computed here, not stored: queries through this view look at one snapshot at a time;
-- counting whole months uses the per-model counts kept with each snapshot.)
CREATE OR REPLACE VIEW inventory_rows AS
SELECT
    r.snapshot_id,
    r.row_number,
    r.model,
    normalize_model(r.model) AS model_key,
    device_identity(r.serial, r.mac, r.lens_device_id) AS identity,
    r.serial,
    r.mac,
    lens_value(r.site) AS site,
    lens_value(r.room) AS room,
    r.lens_device_id,
    r.device_name,
    r.last_seen,
    seen_day(r.last_seen) AS last_seen_day,
    inventory_reject_reason(identity, model_key) AS reject_reason
FROM raw_inventory AS r;

-- One row per device and snapshot. Of duplicate rows the representative is chosen by value,
-- not by position, so counts and lists never depend on row order; the device was last seen on
-- the latest day any of its rows says.
CREATE OR REPLACE VIEW snapshot_devices AS
SELECT
    snapshot_id,
    identity,
    first(model_key ORDER BY model_key, site, room, model) AS model_key,
    first(model ORDER BY model_key, site, room, model) AS model,
    first(site ORDER BY model_key, site, room, model) AS site,
    first(room ORDER BY model_key, site, room, model) AS room,
    count(*) AS times_listed,
    max(last_seen_day) AS last_seen
FROM inventory_rows
WHERE reject_reason IS NULL
GROUP BY snapshot_id, identity;

-- The catalog as matching patterns; a workspace row replaces a shipped row of the same model.
-- `kind`: a model `*words*` matches where the words stand anywhere (an accessory however Lens
-- spells the product before it: "Voyager 5200 UC Charge Case"), `words*` as a prefix,
-- otherwise whole.
CREATE OR REPLACE VIEW catalog_patterns AS
WITH rows AS (
    SELECT
        catalog_key(normalize_model(trim(model, '*'))) AS pattern,
        CASE
            WHEN starts_with(model, '*') AND ends_with(model, '*') THEN 'anywhere'
            WHEN ends_with(model, '*') THEN 'prefix'
            ELSE 'exact'
        END AS kind,
        category,
        end_of_service,
        origin,
        position
    FROM catalog
)
SELECT pattern, kind, category, end_of_service
FROM rows
QUALIFY row_number() OVER (
    PARTITION BY pattern, kind ORDER BY origin = 'workspace' DESC, position DESC) = 1;

-- A normalised model's catalog row (null when the catalog does not know it): the exact match
-- wins, then words anywhere (accessories), then the longest prefix.
CREATE OR REPLACE MACRO model_class(model_key) AS (
    SELECT {'category': p.category, 'end_of_service': p.end_of_service}
    FROM catalog_patterns AS p
    WHERE (p.kind = 'prefix' AND starts_with(catalog_key(model_key), p.pattern))
       OR (p.kind = 'anywhere' AND contains(catalog_key(model_key), p.pattern))
       OR (p.kind = 'exact' AND catalog_key(model_key) = p.pattern)
    ORDER BY CASE p.kind WHEN 'exact' THEN 0 WHEN 'anywhere' THEN 1 ELSE 2 END,
             length(p.pattern) DESC
    LIMIT 1);

-- Every model seen anywhere, classified.
CREATE OR REPLACE VIEW model_classes AS
WITH seen AS (
    SELECT model_key FROM seen_models
    UNION
    SELECT DISTINCT normalize_model(model) FROM raw_rma
),
classified AS (
    SELECT model_key, model_class(model_key) AS class FROM seen WHERE model_key IS NOT NULL
)
SELECT
    model_key,
    coalesce(class.category, 'unclassified') AS category,
    class.end_of_service AS end_of_service
FROM classified;

-- Every RMA row with its keys; a row without RMA number, date or model is rejected.
-- (A CTE, so the parsed date never mixes with the raw text column of the same name.)
CREATE OR REPLACE VIEW rma_rows AS
WITH keyed AS (
    SELECT
        r.*,
        nullif(upper(trim(r.rma_number)), '') AS rma_key,
        -- ISO dates, and the DD.MM.YYYY a German partner's list carries (a two-digit year
        -- would read as the year 26: no date)
        CASE
            WHEN regexp_full_match(trim(r.rma_date), '[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{4}')
                THEN try_strptime(trim(r.rma_date), '%d.%m.%Y')
            ELSE try_strptime(trim(r.rma_date), '%Y-%m-%d')
        END::DATE AS rma_day,
        normalize_model(r.model) AS model_key
    FROM raw_rma AS r
)
SELECT
    sha256,
    customer_id,
    file_name,
    row_number,
    rma_key,
    rma_day AS rma_date,
    model_key,
    rma_number,
    rma_date AS rma_date_text,
    serial,
    model,
    CASE
        WHEN rma_key IS NULL THEN 'no RMA number'
        WHEN rma_day IS NULL THEN 'no date in the form YYYY-MM-DD (or DD.MM.YYYY)'
        WHEN model_key IS NULL THEN 'no model'
    END AS reject_reason
FROM keyed;

-- rules.md RMA: each RMA number counts once per customer (its earliest valid date).
CREATE OR REPLACE VIEW rma_records AS
SELECT
    r.customer_id,
    r.rma_key AS rma_number,
    min(r.rma_date) AS rma_date,
    bool_or(c.category = 'headset') AS is_headset
FROM rma_rows AS r
LEFT JOIN model_classes AS c USING (model_key)
WHERE r.reject_reason IS NULL
GROUP BY ALL;
