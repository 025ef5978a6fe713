-- Where a file of this content, customer, month and kind went when it was loaded (if ever).
SELECT stored_path
FROM intake_log
WHERE customer_id = $customer_id AND sha256 = $sha256 AND month = $month AND kind = $kind
  AND outcome = 'loaded'
ORDER BY receipt_seq
LIMIT 1;
