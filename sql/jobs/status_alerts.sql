-- Open alerts: every month's true-ups (open until the month, reconciled again, withdraws them,
-- or the term is renewed: jobs/status.py), and the categories at WATCH and RMA rates at WATCH
-- or BREACH of each customer's latest reconciled month (later months say them again).
WITH latest AS (
    SELECT customer_id, max(month) AS month FROM reconciliation GROUP BY customer_id
)
SELECT r.month, r.customer_id, r.category || ' ' || r.status AS subject,
       CASE WHEN r.status = 'TRUE_UP'
            THEN format('+{} devices, {} {}, new baseline {}', r.true_up_devices,
                        r.prorated_amount::VARCHAR, r.currency, r.new_baseline::VARCHAR)
            ELSE format('{} devices against {} ordered, growth {} %', r.devices_counted,
                        r.ordered_devices, r.growth_pct::VARCHAR)
       END AS detail
FROM reconciliation AS r LEFT JOIN latest USING (customer_id, month)
WHERE r.status = 'TRUE_UP' OR r.status = 'WATCH' AND latest.month IS NOT NULL
UNION ALL
SELECT m.month, m.customer_id, 'RMA ' || m.status,
       format('{} % ({} headset RMAs, {} headsets)', m.rma_rate_pct::VARCHAR, m.headset_rmas,
              m.headset_base)
FROM rma_results AS m JOIN latest USING (customer_id, month)
WHERE m.status <> 'OK'
ORDER BY 1, 2, 3;
