-- Write-audit-publish: the quality measurements of an RMA log just written, for the GX suite.
SELECT
    $subject AS subject,
    count(*) AS rows,
    count(*) FILTER (WHERE rma_key IS NULL) AS without_number,
    count(*) FILTER (WHERE rma_date IS NULL) AS without_date,
    count(*) FILTER (WHERE rma_date > CAST($today AS DATE)) AS future_dates,
    count(*) FILTER (WHERE model_key IS NULL) AS without_model
FROM rma_rows
WHERE customer_id = $customer_id AND sha256 = $sha256;
