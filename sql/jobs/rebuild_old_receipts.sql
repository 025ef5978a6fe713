-- The old warehouse's receipt number of every upload it loaded, by where the file is kept.
SELECT stored_path, receipt_seq FROM intake_log WHERE outcome = 'loaded';
