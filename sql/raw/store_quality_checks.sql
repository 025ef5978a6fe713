-- Idempotent partition load of findings from `staged_rows`: each subject's replace its old ones.
DELETE FROM quality_checks WHERE subject IN (SELECT DISTINCT subject FROM staged_rows);
INSERT INTO quality_checks
SELECT subject, customer_id, month, source_name, "check", severity, passed, checked, failing,
       message, message_json
FROM staged_rows;
