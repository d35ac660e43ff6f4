-- segment_overview: one row per segment of every training run - who they are, how many, how risky,
-- and what to offer them. Filter on is_latest (the newest as-of date) or on as_of_date / run_id.
-- ${output} is the output.path of the configuration (custseg.bi.render_sql fills it in).
SELECT
  p.as_of_date,
  p.run_id,
  p.as_of_date = (SELECT MAX(latest.as_of_date) FROM delta.`${output}/segment_profiles` AS latest) AS is_latest,
  p.segment_id,
  p.segment_name,
  p.size,
  p.share,
  p.risk_tier,
  p.credit_action,
  p.marketing_strategy,
  p.distinguishing_features,
  p.mean_recency_days,
  p.mean_frequency,
  p.mean_monetary,
  p.mean_avg_ticket,
  p.mean_tenure_days,
  p.mean_annual_income,
  p.mean_credit_score,
  p.borrower_share,
  p.late_payment_rate,
  p.default_rate,
  p.max_dpd,
  p.mean_distance_to_centroid
FROM delta.`${output}/segment_profiles` AS p
