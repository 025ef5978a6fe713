-- Idempotent partition load of one subject's findings from `staged_rows`.
DELETE FROM quality_checks WHERE subject = $subject;
INSERT INTO quality_checks
SELECT $subject, $customer_id, $month, $source_name, "check", severity, passed, checked,
       failing, message
FROM staged_rows;
