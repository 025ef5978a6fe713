-- Open alerts: every month's true-ups (open until the month, reconciled again, withdraws them,
-- or the term is renewed: jobs/status.py), and the categories at WATCH and RMA rates at WATCH
-- or BREACH of each customer's latest reconciled month (later months say them again). The
-- figures only: jobs/status.py words them (topic 'rma': counted is the RMAs, ordered the
-- headsets, pct the rate).
WITH latest AS (
    SELECT customer_id, max(month) AS month FROM reconciliation GROUP BY customer_id
)
SELECT r.month, r.customer_id, r.category AS topic, r.status, r.devices_counted AS counted,
       r.ordered_devices AS ordered, r.growth_pct AS pct, r.true_up_devices AS added,
       r.prorated_amount AS amount, r.currency, r.new_baseline
FROM reconciliation AS r LEFT JOIN latest USING (customer_id, month)
WHERE r.status = 'TRUE_UP' OR r.status = 'WATCH' AND latest.month IS NOT NULL
UNION ALL
SELECT m.month, m.customer_id, 'rma', m.status, m.headset_rmas, m.headset_base,
       m.rma_rate_pct, NULL, NULL, NULL, NULL
FROM rma_results AS m JOIN latest USING (customer_id, month)
WHERE m.status <> 'OK'
ORDER BY 1, 2, 3;
