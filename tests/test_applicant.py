"""The Spark-free applicant scorer (custseg/applicant.py) against the golden run: the same segment, distances and
reason codes as Spark for every customer, its input checks, its command and its independence from pyspark."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from custseg.applicant import ApplicantError, ApplicantScorer
from custseg.contract import outputs
from custseg.contract.features import FEATURES
from custseg.platform.ledger import features_for_date
from custseg.platform.locations import applicant_model_location
from golden import AS_OF, LATER

TOLERANCE = 1e-9
COMPARED = ("segment_id", "segment_name", "second_segment_id", "reason_1", "reason_2", "reason_3")
CLOSE = ("distance_to_centroid", "distance_to_second", "distance_ratio", "reason_1_value", "reason_1_segment_value",
         "reason_2_value", "reason_2_segment_value", "reason_3_value", "reason_3_segment_value")


@pytest.fixture(scope="module")
def document_path(golden) -> str:
    return applicant_model_location(golden.conf.output_path, golden.train.run_id)


@pytest.fixture(scope="module")
def scorer(document_path) -> ApplicantScorer:
    return ApplicantScorer.load(document_path)


def feature_records(spark, golden, as_of) -> list[dict]:
    rows = features_for_date(spark, golden.conf.output_path, as_of).select("customer_id", *FEATURES).collect()
    # as JSON would carry them: numbers (the loan sums are decimals in the table) or null
    return [{k: (v if k == "customer_id" or v is None else float(v)) for k, v in row.asDict().items()} for row in rows]


def assert_same(ours: dict, spark_row: dict) -> None:
    for column in COMPARED:
        assert ours[column] == spark_row[column], (spark_row["customer_id"], column)
    for column in CLOSE:
        a, b = ours[column], spark_row[column]
        assert (a is None) == (b is None), (spark_row["customer_id"], column)
        if a is not None:
            assert math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE), (spark_row["customer_id"], column, a, b)


@pytest.mark.parametrize("as_of", [AS_OF, LATER], ids=["trained", "scored"])
def test_every_customer_gets_sparks_segment_distance_and_reasons(spark, golden, scorer, as_of):
    assignments = {r["customer_id"]: r.asDict() for r in golden.table(spark, outputs.SEGMENT_ASSIGNMENTS, as_of)
                   .filter(f"run_id = '{golden.train.run_id}'").collect()}
    records = feature_records(spark, golden, as_of)
    assert len(records) == len(assignments) > 250
    results = scorer.score_batch(records)
    for record, ours in zip(records, results, strict=True):
        assert ours["customer_id"] == record["customer_id"]
        assert_same(ours, assignments[record["customer_id"]])
    # one at a time gives what the batch gave
    assert [scorer.score(r) for r in records[:20]] == results[:20]
    # every customer with a second segment has at least one reason
    assert all(r["reason_1"] for r in results if r["second_segment_id"] is not None)


def test_results_carry_the_segments_decisions(spark, golden, scorer):
    profiles = {r["segment_id"]: r for r in golden.table(spark, outputs.SEGMENT_PROFILES, AS_OF).collect()}
    result = scorer.score(feature_records(spark, golden, AS_OF)[0])
    profile = profiles[result["segment_id"]]
    for field in ("segment_name", "risk_tier", "credit_action", "apr_low", "apr_high", "marketing_strategy"):
        assert result[field] == profile[field]
    assert scorer.run_id == golden.train.run_id


def test_a_missing_feature_is_imputed_as_in_training(scorer, document_path):
    with open(document_path, encoding="utf-8") as handle:
        features = {f["name"]: f for f in json.load(handle)["features"]}
    base = {f: 1.0 for f in scorer.features}
    unknown = next(f for f, spec in features.items() if spec["not_applicable"] is None and spec["median"] is not None)
    median = features[unknown]["median"]
    assert scorer.model_values({**base, unknown: None}) == scorer.model_values({**base, unknown: median})
    gap = features["gap_mean_days"]["not_applicable"]["value"]
    without_gap = {k: v for k, v in base.items() if k != "gap_mean_days"}
    assert scorer.score(without_gap) == scorer.score({**base, "gap_mean_days": gap})


def test_an_applicant_with_most_features_unknown_gets_no_decision(scorer):
    fine = scorer.score({f: 1.0 for f in scorer.features[2:]})
    assert set(fine["imputed_features"]) <= set(scorer.features[:2])  # a not-applicable value is not imputed
    assert not fine["credit_action"].startswith("insufficient data") and fine["apr_low"] is not None
    sparse = scorer.score({"tenure_days": 100})
    assert "tenure_days" not in sparse["imputed_features"] and len(sparse["imputed_features"]) * 2 > len(
        scorer.features)
    assert (sparse["risk_tier"], sparse["apr_low"], sparse["apr_high"], sparse["credit_limit_multiplier"]) == (
        "unrated", None, None, None)
    assert sparse["credit_action"].startswith(f"insufficient data: {len(sparse['imputed_features'])} of the "
                                              f"model's {len(scorer.features)} features unknown")


@pytest.mark.parametrize(("record", "message"), [
    ({"monetary": "12.5"}, "field 'monetary': expected a number or null, got str"),
    ({"frequency": True}, "field 'frequency': expected a number or null, got bool"),
    ({"monetary": float("nan")}, "field 'monetary': expected a finite number"),
    ({"monetray": 1.0}, "unknown field 'monetray'"),
])
def test_bad_input_names_the_field(scorer, record, message):
    with pytest.raises(ApplicantError, match=message.replace("(", r"\(")):
        scorer.score(record)


def test_a_document_of_another_version_is_refused(document_path):
    with open(document_path, encoding="utf-8") as handle:
        document = json.load(handle)
    with pytest.raises(ApplicantError, match="version 2 cannot be read by this scorer"):
        ApplicantScorer({**document, "version": 2})
    with pytest.raises(ApplicantError, match="not an applicant model document"):
        ApplicantScorer({**document, "format": "something else"})


def test_the_command_scores_json_without_spark(spark, golden, document_path, tmp_path):
    record = feature_records(spark, golden, AS_OF)[1]
    script = ("import sys; sys.modules['pyspark'] = None\n"  # importing pyspark would now fail
              "from custseg.cli import main; sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", script, "score-applicant", "--model", document_path],
                          input=json.dumps([record, record]), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert results[0]["customer_id"] == record["customer_id"]
    assert results[0] == results[1] == ApplicantScorer.load(document_path).score(record)
    bad = subprocess.run([sys.executable, "-c", script, "score-applicant", "--model", document_path],
                         input='{"credit_scor": 700}', capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert bad.stderr.strip() == ("custseg score-applicant: error: unknown field 'credit_scor'; the fields are the "
                                  "customer_features columns")
