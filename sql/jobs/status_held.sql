-- Held files with their customer, oldest first, but those whose content was taken in since
-- (renamed and put back, or approved): status and review list those still in quarantine/.
SELECT h.customer_id, h.stored_path, h.reason
FROM intake_log AS h
WHERE h.outcome = 'held'
  AND NOT EXISTS (SELECT 1 FROM intake_log AS later
                  WHERE later.customer_id IS NOT DISTINCT FROM h.customer_id
                    AND later.sha256 = h.sha256 AND later.receipt_seq > h.receipt_seq
                    AND later.outcome IN ('loaded', 'duplicate', 'approved'))
ORDER BY h.receipt_seq;
