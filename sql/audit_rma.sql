-- Write-audit-publish: the rows of an RMA log just written, as the quality suite sees them.
SELECT
    rma_key,
    rma_date,
    date_diff('day', CAST($today AS DATE), rma_date) AS days_ahead,
    model_key
FROM rma_rows
WHERE customer_id = $customer_id AND sha256 = $sha256
ORDER BY row_number;
