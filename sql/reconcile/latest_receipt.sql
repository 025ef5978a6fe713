-- The latest snapshot received: what a result computed now has seen.
SELECT coalesce(max(receipt_seq), 0) FROM snapshots;
