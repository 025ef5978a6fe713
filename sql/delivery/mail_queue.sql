-- Queue a message (again, on --resend): one ledger row per key.
DELETE FROM mail_ledger WHERE message_key = $message_key;
INSERT INTO mail_ledger BY NAME
SELECT $message_key AS message_key, $kind AS kind, $customer_id AS customer_id, $month AS month,
       $subject AS subject, $recipients AS recipients, 'queued' AS status, 0 AS attempts,
       NULL AS answer, $queued_at AS queued_at, NULL AS sent_at, $message AS message,
       $topic AS topic, $figures AS figures, $key_version AS key_version;
