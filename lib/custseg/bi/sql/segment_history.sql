-- segment_history: one row per customer and as-of date, with the previous date's segment, to answer
-- "which segment was customer X in on date D" and "who moved". Segment ids are arbitrary per model, so a
-- change is judged on segment_name. ${output} is the configuration's output.path.
SELECT
  a.customer_id,
  a.as_of_date,
  a.segment_id,
  a.segment_name,
  a.distance_to_centroid,
  a.run_id AS model_run_id,
  LAG(a.as_of_date) OVER by_date AS previous_as_of_date,
  LAG(a.segment_name) OVER by_date AS previous_segment_name,
  COALESCE(LAG(a.segment_name) OVER by_date <> a.segment_name, FALSE) AS has_changed_segment
FROM delta.`${output}/segment_assignments` AS a
WINDOW by_date AS (PARTITION BY a.customer_id ORDER BY a.as_of_date)
