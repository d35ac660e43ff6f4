-- k_selection_record: the audit trail of how many segments each training run chose and why - every
-- candidate K with its metrics, the chosen K and the rule's reason repeated on each row, and when the
-- run finished with which features. ${output} is the configuration's output.path.
WITH current_trainings AS (
  -- Each date's latest succeeded training run: its rows are the date's current ones; a killed or failed
  -- run's rows never show.
  SELECT run_id, finished_at, metrics_json
  FROM (
    SELECT run_id, finished_at, metrics_json,
           ROW_NUMBER() OVER (PARTITION BY as_of_date ORDER BY finished_at DESC, run_id) AS newest
    FROM delta.`${output}/runs`
    WHERE job = 'train_segments' AND status = 'succeeded'
  )
  WHERE newest = 1
)
SELECT
  k.as_of_date,
  k.run_id,
  k.k,
  k.segments,
  k.silhouette,
  k.sse,
  k.davies_bouldin,
  k.calinski_harabasz,
  k.min_share,
  k.stability,
  k.is_eligible,
  k.is_chosen,
  MAX(CASE WHEN k.is_chosen THEN k.k END) OVER whole_run AS chosen_k,
  MAX(k.reason) OVER whole_run AS chosen_reason,  -- the reason is stored on the chosen row only
  k.sample_rows,
  r.finished_at AS run_finished_at,
  GET_JSON_OBJECT(r.metrics_json, '$.features_used') AS features_used
FROM delta.`${output}/k_selection` AS k
INNER JOIN current_trainings AS r
  ON k.run_id = r.run_id
WINDOW whole_run AS (PARTITION BY k.run_id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
