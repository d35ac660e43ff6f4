-- segment_overview: one row per segment of each date's current training run - who they are, how many, how risky,
-- and what to offer them. Filter on is_latest (the newest as-of date) or on as_of_date / run_id.
-- ${output} is the output.path of the configuration (custseg.bi.render_sql fills it in).
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
  p.as_of_date,
  p.run_id,
  p.as_of_date = MAX(p.as_of_date) OVER () AS is_latest,
  p.segment_id,
  p.segment_name,
  p.size,
  p.share,
  p.risk_tier,
  p.tier_reason,
  p.credit_action,
  p.apr_low,
  p.apr_high,
  p.credit_limit_multiplier,
  p.marketing_strategy,
  p.distinguishing_features,
  p.mean_recency_days,
  p.mean_frequency,
  p.mean_monetary,
  p.mean_avg_ticket,
  p.mean_tenure_days,
  p.mean_annual_income,
  p.median_monetary,
  p.median_frequency,
  p.median_tenure_days,
  p.lapsed_share,
  p.mean_credit_score,
  p.borrower_share,
  p.borrowers,
  p.defaulted_borrowers,
  p.default_rate_ever,
  p.default_rate_ever_ci_low,
  p.default_rate_ever_ci_high,
  p.late_borrowers_12m,
  p.late_payment_rate_12m,
  p.late_payment_rate_12m_ci_low,
  p.late_payment_rate_12m_ci_high,
  p.max_dpd,
  p.mean_distance_to_centroid
FROM delta.`${output}/segment_profiles` AS p
INNER JOIN current_trainings AS t ON p.run_id = t.run_id
