-- The next receipt numbers, ascending.
SELECT nextval('receipt_seq') AS receipt FROM range($count) ORDER BY receipt;
