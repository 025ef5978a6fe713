-- What a missing-inventory reminder for a month must name, so it never hides why: the inventory
-- uploads of that month that were rejected, and those rejected or loaded for one of the months
-- just after it (mail.py keeps those whose name held no month: taken for the month they were
-- last changed, they may well be this month's).
SELECT customer_id, file_name, outcome, month, reason, reason_message, stored_path
FROM intake_log
WHERE kind = 'inventory'
  AND outcome IN ('quarantined', 'loaded')
  AND (month = $month AND outcome = 'quarantined' OR month > $month AND month <= $until)
ORDER BY receipt_seq;
