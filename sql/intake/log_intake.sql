-- One line in the intake ledger per file handed to us.
INSERT INTO intake_log
VALUES ($receipt_seq, $customer_id, $file_name, $sha256, $kind, $month, $received_at,
        $outcome, $stored_path, $reason, $reason_message);
