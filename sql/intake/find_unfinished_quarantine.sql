-- Where a file of this name and content was recorded as quarantined or held (newest first): a
-- claimed file whose record's path holds nothing was stopped between record and move.
SELECT stored_path, received_at, reason, reason_message, outcome
FROM intake_log
WHERE outcome IN ('quarantined', 'held') AND customer_id IS NOT DISTINCT FROM $customer_id
  AND file_name = $file_name AND sha256 = $sha256
ORDER BY receipt_seq DESC;
