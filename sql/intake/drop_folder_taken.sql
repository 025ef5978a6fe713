-- The intake records since the earliest claim of a run's uploads from the object-storage drop
-- folder (pipelines/intake/object_inbox.py settles each upload from its own record: its
-- customer, its name and its content), oldest first.
SELECT customer_id, file_name, sha256, received_at, stored_path
FROM intake_log
WHERE received_at >= $since
ORDER BY receipt_seq;
