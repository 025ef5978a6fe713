-- Where an upload from the object-storage drop folder went: the latest intake record of its
-- customer, content and name (pipelines/intake/object_inbox.py settles it from there).
SELECT stored_path
FROM intake_log
WHERE customer_id IS NOT DISTINCT FROM $customer_id
  AND sha256 = $sha256
  AND file_name = $file_name
ORDER BY receipt_seq DESC
LIMIT 1;
