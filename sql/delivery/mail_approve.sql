-- The approval: what waits for the months (every month when NULL) and the customer (every one
-- when NULL) is queued for delivery; returns how many.
UPDATE mail_ledger
SET status = 'queued', answer = 'approved on '
                                || strftime(CAST($now AS TIMESTAMP), '%Y-%m-%d %H:%M:%S') || ' UTC'
WHERE status = 'waiting'
  AND (CAST($months AS VARCHAR[]) IS NULL OR list_contains(CAST($months AS VARCHAR[]), month))
  AND (CAST($customer_id AS VARCHAR) IS NULL OR customer_id = $customer_id);
