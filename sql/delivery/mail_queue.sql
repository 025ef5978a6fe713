-- Queue a message (again, on --resend, or composed again after it was withdrawn): one ledger
-- row per key; `waiting` when it must be approved first (delivery.review: required); `carried`
-- for an updated report or alert a correction carries, which `answer` names (issue 30).
DELETE FROM mail_ledger WHERE message_key = $message_key;
INSERT INTO mail_ledger BY NAME
SELECT $message_key AS message_key, $kind AS kind, $customer_id AS customer_id, $month AS month,
       $subject AS subject, $recipients AS recipients, $status AS status, 0 AS attempts,
       $answer AS answer, $queued_at AS queued_at, NULL AS sent_at, $message AS message,
       $topic AS topic, $figures AS figures, $key_version AS key_version;
