-- The macros the SQL shares, so each rule is written once: the reading of Lens's values, model
-- normalisation and catalog matching, device identity (rules.md, interfaces.md), and how an
-- upload's CSV cell is read. Applied after tables.sql and migrations.sql, before views.sql.

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

-- A serial that does not look like a Poly serial (`pattern`: raw/quality.py SERIAL_PATTERN);
-- a placeholder ("Not Set", "N/A") is no serial, not a bad one.
CREATE OR REPLACE MACRO odd_serial(serial, pattern) AS
    NOT regexp_full_match(usable_serial(serial), pattern);

-- A MAC that is not 12 hex digits among separators (`pattern`: raw/quality.py MAC_PATTERN),
-- matched as it stands (as fast as the serial's test; taking the separators out first was four
-- times slower); null without a MAC.
CREATE OR REPLACE MACRO odd_mac(mac, pattern) AS
    CASE WHEN NOT regexp_full_match(mac, '[\s:.\-]*') THEN NOT regexp_full_match(mac, pattern) END;

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

-- A CSV cell as a field, trimmed as str.strip() trims: by DuckDB's plain trim() (the Unicode
-- spaces) unless the file holds other white space, then of every such character (`whitespace`,
-- slower); null where the export has no such column.
CREATE OR REPLACE MACRO export_field(cells, field_index, trimming, whitespace) AS
    CASE
        WHEN field_index = 0 THEN NULL
        WHEN trimming = 'spaces' THEN trim(cells[field_index])
        ELSE trim(cells[field_index], whitespace)
    END;

-- A last-seen cell's day: ISO 8601 ("2026-11-14", "2026-11-14 08:00",
-- "2026-11-14T08:00:00.000Z" as Lens's API writes it, "2026/11/14") or German ("14.11.2026",
-- "14.11.2026 08:00"); null for anything else ("11/14/2026" reads either way round).
CREATE OR REPLACE MACRO seen_day(cell) AS
    try_strptime(split_part(split_part(trim(cell), ' ', 1), 'T', 1),
                 ['%Y-%m-%d', '%Y/%m/%d', '%d.%m.%Y'])::DATE;

-- rules.md "Devices not seen": a device Lens last saw (`last_seen`, a day) more than `days` days
-- before the last day of `month` (YYYY-MM); null where the day is not known.
CREATE OR REPLACE MACRO is_not_seen(last_seen, month, days) AS
    date_diff('day', last_seen, last_day(strptime(month || '-01', '%Y-%m-%d')::DATE)) > days;
