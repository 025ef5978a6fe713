-- The headset RMA numbers counted for the report month's calendar year (rma.csv's count).
SELECT rma_number
FROM rma_records
WHERE is_headset AND customer_id = $customer_id
  AND rma_date BETWEEN $year_start AND $month_end
ORDER BY rma_date, rma_number
LIMIT $limit;
