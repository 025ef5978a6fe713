-- What a missing-inventory reminder for a month must name, so it never hides why: the inventory
-- uploads of that month that were rejected or are held (not those taken in since), and those
-- rejected, held or loaded for one of the months just after it (mail.py keeps those whose name
-- held no month: taken for the month they were last changed, they may well be this month's).
SELECT customer_id, file_name, outcome, month, reason, reason_message, stored_path
FROM intake_log AS f
WHERE kind = 'inventory'
  AND outcome IN ('quarantined', 'held', 'loaded')
  AND (month = $month AND outcome <> 'loaded' OR month > $month AND month <= $until)
  AND NOT (outcome = 'held' AND EXISTS (
      SELECT 1 FROM intake_log AS later
      WHERE later.customer_id IS NOT DISTINCT FROM f.customer_id AND later.sha256 = f.sha256
        AND later.receipt_seq > f.receipt_seq
        AND later.outcome IN ('loaded', 'duplicate', 'approved')))
ORDER BY receipt_seq;
