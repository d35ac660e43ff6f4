-- customer_lookup: each customer's newest segment (training or scoring date) with what the segment
-- means for them: risk tier and suggested actions from the profile of the model that assigned it.
-- For earlier dates use segment_history. ${output} is the configuration's output.path.
WITH latest AS (
  SELECT customer_id, MAX(as_of_date) AS as_of_date
  FROM delta.`${output}/segment_assignments`
  GROUP BY customer_id
)
SELECT
  a.customer_id,
  a.as_of_date,
  a.segment_id,
  a.segment_name,
  a.distance_to_centroid,
  a.run_id AS model_run_id,
  p.risk_tier,
  p.credit_action,
  p.marketing_strategy,
  p.distinguishing_features
FROM delta.`${output}/segment_assignments` AS a
INNER JOIN latest AS l
  ON a.customer_id = l.customer_id AND a.as_of_date = l.as_of_date
-- A scored date carries the training run's id, so its profile is that run's profile.
LEFT JOIN delta.`${output}/segment_profiles` AS p
  ON a.run_id = p.run_id AND a.segment_id = p.segment_id
