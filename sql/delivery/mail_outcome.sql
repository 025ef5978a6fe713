-- The outcome of one delivery attempt.
UPDATE mail_ledger
SET status = $status, attempts = attempts + 1, answer = $answer,
    sent_at = CASE WHEN $status = 'sent' THEN CAST($now AS TIMESTAMP) ELSE sent_at END
WHERE message_key = $message_key;
