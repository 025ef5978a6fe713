-- Held files an operator approved (`approve --file`): their content is not checked again for
-- that customer and month (intake/evidence.py).
SELECT customer_id, sha256, month
FROM intake_log
WHERE outcome = 'approved';
