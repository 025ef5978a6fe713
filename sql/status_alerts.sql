-- Alerts of each customer's latest reconciled month: true-ups, and RMA rates at WATCH or BREACH.
WITH latest AS (
    SELECT customer_id, max(month) AS month FROM reconciliation GROUP BY customer_id
)
SELECT r.month, r.customer_id, r.category || ' TRUE_UP' AS subject,
       format('+{} devices, {} {}, new baseline {}', r.true_up_devices,
              r.prorated_amount::VARCHAR, r.currency, r.new_baseline::VARCHAR) AS detail
FROM reconciliation AS r JOIN latest USING (customer_id, month)
WHERE r.status = 'TRUE_UP'
UNION ALL
SELECT m.month, m.customer_id, 'RMA ' || m.status,
       format('{} % ({} headset RMAs, {} headsets)', m.rma_rate_pct::VARCHAR, m.headset_rmas,
              m.headset_base)
FROM rma_results AS m JOIN latest USING (customer_id, month)
WHERE m.status <> 'OK'
ORDER BY 1, 2, 3;
