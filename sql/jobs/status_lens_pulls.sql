-- Each Lens customer's latest pull, when it failed: the month has no fresh inventory.
SELECT month, customer_id, tenant_id, error
FROM lens_pulls
QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY finished_at DESC) = 1
    AND outcome = 'failed'
ORDER BY customer_id;
