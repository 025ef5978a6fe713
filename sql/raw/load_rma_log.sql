-- Idempotent partition load of one RMA log (partition = customer + file content).
DELETE FROM raw_rma WHERE customer_id = $customer_id AND sha256 = $sha256;
INSERT INTO raw_rma
SELECT $sha256, $customer_id, $file_name, row_number, rma_number, rma_date, serial, model
FROM staged_rows;
