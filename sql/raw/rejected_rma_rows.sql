-- The rows of an RMA log that do not count, with the reason, for <file>.rejected.csv.
SELECT row_number AS "row", reject_reason AS reason, rma_number, rma_date_text AS date,
       serial, model
FROM rma_rows
WHERE customer_id = $customer_id AND sha256 = $sha256 AND reject_reason IS NOT NULL
ORDER BY row_number;
