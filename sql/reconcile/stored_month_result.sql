-- The result `reconcile` last stored for a month.
SELECT through_receipt, result_json FROM month_results WHERE month = $month;
