-- segment_history: one row per customer and as-of date, with the previous date's segment, to answer
-- "which segment was customer X in on date D" and "who moved". Segment ids are stable across retrains
-- (segment_lineage), so a change is a change of segment_id. ${output} is the configuration's output.path.
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
)
SELECT
  a.customer_id,
  a.as_of_date,
  a.segment_id,
  a.segment_name,
  a.distance_to_centroid,
  a.run_id AS model_run_id,
  LAG(a.as_of_date) OVER by_date AS previous_as_of_date,
  LAG(a.segment_id) OVER by_date AS previous_segment_id,
  LAG(a.segment_name) OVER by_date AS previous_segment_name,
  COALESCE(LAG(a.segment_id) OVER by_date <> a.segment_id, FALSE) AS has_changed_segment
FROM assignments AS a
WINDOW by_date AS (PARTITION BY a.customer_id ORDER BY a.as_of_date)
