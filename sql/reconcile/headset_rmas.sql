-- Headset RMAs per customer in the calendar year of the report month, up to its last day.
SELECT customer_id, count(*) AS headset_rmas
FROM rma_records
WHERE is_headset
  AND rma_date BETWEEN $year_start AND $month_end
  AND customer_id = ANY($customer_ids)
GROUP BY customer_id;
