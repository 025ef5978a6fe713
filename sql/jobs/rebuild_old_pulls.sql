-- The receipt numbers of the old warehouse's Lens API pulls.
SELECT receipt_seq FROM snapshots WHERE source = 'lens_api';
