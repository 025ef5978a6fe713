-- For `python -m pipelines catalog`: the models of the month snapshots the catalog does not know
-- or classes not_counted, with the devices of each customer's latest month holding the model
-- (summed over customers), the customers and the months; as the partner's export spells it.
WITH per_month AS (
    SELECT m.model_key, s.customer_id, s.month, m.devices
    FROM month_snapshots AS s
    JOIN snapshot_models AS m USING (snapshot_id)
),
by_model AS (
    SELECT
        model_key,
        count(DISTINCT customer_id) AS customers,
        count(DISTINCT month) AS months,
        min(month) AS first_month,
        max(month) AS last_month
    FROM per_month
    GROUP BY model_key
),
latest AS (
    SELECT model_key, sum(devices)::INTEGER AS devices
    FROM (SELECT model_key, customer_id, arg_max(devices, month) AS devices
          FROM per_month GROUP BY model_key, customer_id)
    GROUP BY model_key
),
wanted AS (
    SELECT b.*, l.devices, c.category
    FROM by_model AS b
    JOIN latest AS l USING (model_key)
    JOIN model_classes AS c USING (model_key)
    WHERE c.category IN ('unclassified', 'not_counted')
),
spellings AS (  -- one spelling per model key, the same on every run
    SELECT normalize_model(model) AS model_key, min(model) AS model
    FROM (SELECT DISTINCT model FROM raw_inventory)
    GROUP BY 1
)
SELECT w.category, coalesce(s.model, w.model_key) AS model, w.devices, w.customers, w.months,
       w.first_month, w.last_month
FROM wanted AS w
LEFT JOIN spellings AS s USING (model_key)
ORDER BY w.category = 'not_counted', w.devices DESC, model;
