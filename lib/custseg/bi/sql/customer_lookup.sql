-- customer_lookup: each customer's newest segment (training or scoring date) with what the segment
-- means for them: risk tier and suggested actions from the profile of the model that assigned it.
-- For earlier dates use segment_history. ${output} is the configuration's output.path.
WITH current_models AS (
  -- Each date's latest succeeded run that assigned segments (train_segments or score_customers): the rows
  -- of its model are the date's current ones; a killed or failed run's rows never show.
  SELECT as_of_date, model_run_id
  FROM (
    SELECT as_of_date, model_run_id,
           ROW_NUMBER() OVER (PARTITION BY as_of_date ORDER BY finished_at DESC, run_id) AS newest
    FROM delta.`${output}/runs`
    WHERE status = 'succeeded' AND model_run_id IS NOT NULL
  )
  WHERE newest = 1
),
assignments AS (
  SELECT a.*
  FROM delta.`${output}/segment_assignments` AS a
  INNER JOIN current_models AS c ON a.as_of_date = c.as_of_date AND a.run_id = c.model_run_id
),
latest AS (
  SELECT customer_id, MAX(as_of_date) AS as_of_date
  FROM assignments
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
FROM assignments AS a
INNER JOIN latest AS l
  ON a.customer_id = l.customer_id AND a.as_of_date = l.as_of_date
-- A scored date carries the training run's id, so its profile is that run's profile.
LEFT JOIN delta.`${output}/segment_profiles` AS p
  ON a.run_id = p.run_id AND a.segment_id = p.segment_id
