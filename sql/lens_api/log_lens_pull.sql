-- One line per Lens API pull.
INSERT INTO lens_pulls
VALUES ($customer_id, $tenant_id, $month, $started_at, $finished_at, $outcome, $devices,
        $snapshot_id, $error);
