-- Messages waiting for approval (delivery.review: required), per month and customer.
SELECT month, customer_id, count(*)::INTEGER AS messages
FROM mail_ledger
WHERE status = 'waiting'
GROUP BY month, customer_id
ORDER BY month, customer_id;
