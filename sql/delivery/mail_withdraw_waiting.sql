-- Messages waiting for approval that the month, composed again, no longer composes (other
-- figures, an alert that no longer holds): never sent. Only the kinds and the customer just
-- composed; returns how many.
UPDATE mail_ledger
SET status = 'withdrawn', answer = 'withdrawn before approval: the month, composed again on '
                                   || strftime(CAST($now AS TIMESTAMP), '%Y-%m-%d %H:%M:%S')
                                   || ' UTC, no longer says it'
WHERE status = 'waiting' AND month = $month
  AND list_contains(CAST($kinds AS VARCHAR[]), kind)
  AND (CAST($customer_id AS VARCHAR) IS NULL OR customer_id = $customer_id)
  AND NOT list_contains(CAST($keys AS VARCHAR[]), message_key);
