-- One line per Lens API pull; `region` is the tenant's, as Lens named it (NULL: not said).
INSERT INTO lens_pulls (customer_id, tenant_id, month, started_at, finished_at, outcome, devices,
                        snapshot_id, error, region)
VALUES ($customer_id, $tenant_id, $month, $started_at, $finished_at, $outcome, $devices,
        $snapshot_id, $error, $region);
