-- Each intake batch's last-seen days start afresh (intake/staging.py).
DELETE FROM staged_seen;
