-- Where an upload from the object-storage drop folder went: the latest intake record of its
-- customer and content since it was claimed (pipelines/intake/object_inbox.py settles it from
-- there). Not by name: a name already waiting locally is taken under another one.
SELECT stored_path
FROM intake_log
WHERE customer_id IS NOT DISTINCT FROM $customer_id
  AND sha256 = $sha256
  AND received_at >= $since
ORDER BY receipt_seq DESC
LIMIT 1;
