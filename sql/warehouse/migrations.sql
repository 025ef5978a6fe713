-- What brings a warehouse made by an older polyrecon up to date: applied (idempotently) by
-- every writing connection after tables.sql, each a no-op once done or on a new warehouse.

-- Ledgers made before reasons were kept as messages: their older lines show the English text.
ALTER TABLE intake_log ADD COLUMN IF NOT EXISTS reason_message VARCHAR;

-- Warehouses made before snapshots carried their device count get it (and their per-model
-- counts) once: sql/warehouse/count_older_snapshots.sql.
ALTER TABLE snapshots ADD COLUMN IF NOT EXISTS devices INTEGER;

-- Warehouses made when the unused columns were copied in as JSON: nobody read them.
ALTER TABLE raw_inventory DROP COLUMN IF EXISTS extra_json;

-- Warehouses made before last-seen dates were kept (rules.md "Devices not seen", 2026-12-04):
-- their snapshots' last seen is not known (`rebuild` reads it again from archive/).
ALTER TABLE raw_inventory ADD COLUMN IF NOT EXISTS last_seen VARCHAR;

-- Warehouses reconciled before reconciled_months existed: their months count as up to date.
INSERT INTO reconciled_months
SELECT DISTINCT month, (SELECT coalesce(max(receipt_seq), 0) FROM snapshots)
FROM reconciliation
WHERE NOT EXISTS (SELECT 1 FROM reconciled_months);

-- Findings stored before they were kept as messages show their English text.
ALTER TABLE quality_checks ADD COLUMN IF NOT EXISTS message_json VARCHAR;

-- What an alert is about (a true-up's category, "rma"): a later change to it sends a correction.
-- Messages queued before this column existed have none and are never corrected.
ALTER TABLE mail_ledger ADD COLUMN IF NOT EXISTS topic VARCHAR;
-- A report's table of figures (JSON): what an updated report of the month lists as changed.
ALTER TABLE mail_ledger ADD COLUMN IF NOT EXISTS figures VARCHAR;
-- How message_key was made: 2, from what the message is about (delivery/messages.py); NULL, from
-- its wording, before issue 27 (the next send re-keys the line, sending nothing: delivery/mail.py);
-- 1, from its wording, kept: no message composed since is that one.
ALTER TABLE mail_ledger ADD COLUMN IF NOT EXISTS key_version INTEGER;

-- Pulls made before the tenant's region was kept: their region is not known.
ALTER TABLE lens_pulls ADD COLUMN IF NOT EXISTS region VARCHAR;
