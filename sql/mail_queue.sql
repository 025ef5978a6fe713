-- Queue a message (again, on --resend): one ledger row per key.
DELETE FROM mail_ledger WHERE message_key = $message_key;
INSERT INTO mail_ledger
VALUES ($message_key, $kind, $customer_id, $month, $subject, $recipients, 'queued', 0, NULL,
        $queued_at, NULL, $message);
