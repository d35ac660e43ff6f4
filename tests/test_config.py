"""The strict configuration: every mistake fails at start-up in one line naming the key; no Spark needed."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from custseg.config import ConfigError, PricingConf, SegmentRules, load_config, parse_config
from custseg.ml.describe import assess_risk, describe_segments

ROOT = Path(__file__).resolve().parents[1]
TEST_CONF = ROOT / "conf" / "test.yaml"


def error_of(overrides: list[str] | None = None, path: Path = TEST_CONF, as_of: str | None = None) -> str:
    """The ConfigError message, checked to be one line."""
    with pytest.raises(ConfigError) as caught:
        load_config(path, overrides or [], as_of)
    message = str(caught.value)
    assert "\n" not in message
    return message


def write_conf(tmp_path: Path, change) -> Path:
    """conf/test.yaml with `change(raw)` applied, written as a YAML file."""
    raw = yaml.safe_load(TEST_CONF.read_text())
    change(raw)
    path = tmp_path / "conf.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_unknown_key_in_the_yaml_file_names_it_and_the_closest_key(tmp_path):
    path = write_conf(tmp_path, lambda raw: raw["model"].update(kk=3))
    assert error_of(path=path) == "config: unknown key model.kk; did you mean model.k?"


def test_unknown_key_from_set_names_it_and_the_closest_key():
    assert error_of(["features.lookback_dayz=30"]) == (
        "config: unknown key features.lookback_dayz; did you mean features.lookback_days?")
    assert error_of(["segment_rules.high_risk.default_ratee=0.2"]) == (
        "config: unknown key segment_rules.high_risk.default_ratee; did you mean segment_rules.high_risk.default_rate?")
    assert error_of(["inputs.custmers.path=x"]) == "config: unknown key inputs.custmers; did you mean inputs.customers?"


def test_unknown_key_given_null_is_still_refused():
    assert error_of(["model.kk=null"]) == "config: unknown key model.kk; did you mean model.k?"


def test_unknown_section_names_it_and_the_closest_section():
    assert error_of(["modle.k=3"]) == "config: unknown section modle; did you mean model?"


def test_unknown_key_without_a_close_match_lists_the_valid_keys():
    assert error_of(["output.location=x"]) == "config: unknown key output.location; valid keys: path, database"


def test_wrong_type_names_the_key_and_the_value():
    assert error_of(["model.k_max=ten"]) == "config: model.k_max must be an integer, got 'ten'"
    assert error_of(["spark.use_delta_pip=maybe"]) == "config: spark.use_delta_pip must be true or false, got 'maybe'"
    assert error_of(["inputs.loans.format=orc"]) == (
        "config: inputs.loans.format must be one of 'delta', 'parquet', 'csv' or 'table', got 'orc'")


def test_out_of_range_value_names_the_key_and_the_value():
    assert error_of(["model.min_segment_share=1.5"]) == (
        "config: model.min_segment_share must be between 0 and 1, got 1.5")
    assert error_of(["model.sample_size=0"]) == "config: model.sample_size must be > 0, got 0"
    assert error_of(["model.k=1"]) == "config: model.k must be >= 2, got 1"
    assert error_of(["model.k_min=6", "model.k_max=4"]) == "config: model.k_max must be >= k_min (6), got 4"


def test_invalid_as_of_date_is_refused_and_a_quoted_one_accepted(tmp_path):
    assert error_of(as_of="2026-13-01") == "config: as_of_date must be a date YYYY-MM-DD, got '2026-13-01'"
    path = write_conf(tmp_path, lambda raw: raw.update(as_of_date="2026-03-01"))  # safe_dump quotes it
    assert "'2026-03-01'" in path.read_text()
    assert load_config(path).as_of_date == dt.date(2026, 3, 1)


def test_input_without_its_location_names_the_missing_key():
    assert error_of(["inputs.loans.path=null"]) == "config: inputs.loans.path is required when format is 'parquet'"
    assert error_of(["inputs.loans.path=null", "inputs.loans.format=delta"]) == (
        "config: inputs.loans.path is required when format is 'delta'")
    assert error_of(["inputs.loans.format=table"]) == "config: inputs.loans.table is required when format is 'table'"
    assert error_of(["output=null"]) == "config: missing key output"


def test_a_value_mapping_names_a_listed_column_and_its_values():
    assert error_of(["inputs.loans.values.status.Closed=paid"]) == (
        "config: inputs.loans.values.status.Closed maps to 'paid', which is not one of ['current', 'late', 'default', "
        "'charged_off', 'paid_off']")
    assert error_of(["inputs.loans.values.principal.x=current"]) == (
        "config: inputs.loans.values.principal is not a column of the loans contract with a list of values (those: "
        "['status'])")


def test_a_multiplied_column_and_ids_from_rows_are_refused_where_they_make_no_sense():
    assert error_of(["inputs.transactions.multiply_by.customer_id=Price"]) == (
        "config: inputs.transactions.multiply_by.customer_id is not a number column of the transactions contract "
        "(those: ['amount'])")
    assert error_of(["inputs.loans.transaction_id_from_row=true"]) == (
        "config: inputs.loans.transaction_id_from_row applies to inputs.transactions only")
    assert error_of(["inputs.customers.basket=Invoice"]) == (
        "config: inputs.customers.basket applies to inputs.transactions only")
    assert error_of(["inputs.transactions.transaction_id_from_row=true",
                     "inputs.transactions.columns.transaction_id=txn"]) == (
        "config: inputs.transactions.transaction_id_from_row and columns.transaction_id exclude each other: the id "
        "is either mapped or made from the row")


def test_rows_per_customer_applies_to_the_customers_table_only():
    assert error_of(["inputs.transactions.rows_per_customer=many"]) == (
        "config: inputs.transactions.rows_per_customer applies to inputs.customers only")
    assert error_of(["inputs.customers.rows_per_customer=all"]).startswith(
        "config: inputs.customers.rows_per_customer ")


def test_partial_segment_rules_are_merged_with_the_defaults(tmp_path):
    partial = {"min_borrowers": 50, "high_risk": {"default_rate": 0.2}}
    path = write_conf(tmp_path, lambda raw: raw.update(segment_rules=partial))
    rules = load_config(path).segment_rules
    assert (rules.min_borrowers, rules.lapsed_share, rules.new_tenure_days) == (50, 0.5, 180)
    assert (rules.high_risk.default_rate, rules.high_risk.late_payment_rate) == (0.2, 0.30)
    assert rules.medium_risk.default_rate == 0.03 and rules.credit_action.low.startswith("pre-approve")
    # 60 borrowers, 9 defaulted (15 %, 95 % CI 8.1-26.1 %): high by default, medium under the configured 20 %.
    segment = {"segment_id": 0, "borrowers": 60, "defaulted_borrowers": 9, "late_borrowers_12m": 0}
    assert assess_risk(segment, SegmentRules()).tier == "high"
    assert assess_risk(segment, rules).tier == "medium"  # the configured threshold, not the default, decides
    assert assess_risk({**segment, "borrowers": 40}, rules).tier == "unrated"  # under the configured minimum


def test_describe_segments_without_rules_uses_the_defaults():
    risk_rows = [{"segment_id": 0, "borrowers": 100, "defaulted_borrowers": 12, "late_borrowers_12m": 0,
                  "lapsed_share": 0.0, "mean_credit_score": None},
                 {"segment_id": 1, "borrowers": 20, "defaulted_borrowers": 0, "late_borrowers_12m": 0,
                  "lapsed_share": 0.8, "mean_credit_score": 750}]
    medians = {0: {"monetary": 10.0, "frequency": 1.0, "tenure_days": 900.0},
               1: {"monetary": 0.0, "frequency": 0.0, "tenure_days": 2000.0}}
    population = {"monetary": (5.0, 50.0, 500.0), "frequency": (1.0, 4.0, 12.0), "tenure_days": (300.0, 900.0, 1800.0)}
    described = {d["segment_id"]: d for d in describe_segments(risk_rows, [], ["monetary"], medians=medians,
                                                                population=population)}
    assert described[0]["risk_tier"] == "high" and described[0]["credit_action"].startswith("manual review")
    assert described[1]["risk_tier"] == "unrated"  # 20 borrowers, fewer than the default 30
    assert described[1]["segment_name"] == "Low value, lapsed"
    assert (described[1]["apr_low"], described[1]["apr_high"]) == (0.11, 0.13)  # the default pricing's base band


def test_malformed_yaml_names_the_file_and_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("seed: 42\nmodel:\n  features: [recency_days, frequency\n  k: 3\n")
    message = error_of(path=path)
    assert message.startswith(f"config file {path}: invalid YAML at line 4: ")


def test_yaml_tags_are_refused_not_run(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "tagged.yaml"
    path.write_text(f"seed: !!python/object/apply:os.system ['touch {marker}']\n")
    message = error_of(path=path)
    assert message.startswith(f"config file {path}: invalid YAML at line 1: ") and "python/object" in message
    assert not marker.exists()


def test_missing_config_file_is_one_line(tmp_path):
    assert error_of(path=tmp_path / "nope.yaml") == f"config file not found: {tmp_path / 'nope.yaml'}"


def test_protected_attribute_mapped_through_columns_is_refused():
    assert error_of(["inputs.customers.columns.annual_income= AGE"]) == (
        "config: inputs.customers.columns.annual_income maps protected attribute 'AGE' onto a column that can "
        "become a clustering feature")
    conf = load_config(TEST_CONF, ["inputs.customers.columns.birth_date=age"])  # protected onto protected: fine
    assert conf.inputs["customers"].columns == {"birth_date": "age"}


def test_protected_attribute_among_model_features_is_refused():
    message = error_of(["model.features=[monetary, Gender]", "model.log1p_features=[]"])
    assert message == ("config: model.features lists protected attribute(s) ['Gender']; "
                       "they may not be used for segmentation")


def test_protected_or_pii_descriptive_attribute_is_refused():
    message = error_of(["descriptive_attributes=[region, Sex, email]"])
    assert message == ("config: descriptive_attributes lists protected or PII attribute(s) ['Sex', 'email']; "
                       "they are shown only in the fairness audit")


@pytest.mark.parametrize("name", ["local", "test", "cluster"])
def test_shipped_configurations_parse(name):
    raw = yaml.safe_load((ROOT / "conf" / f"{name}.yaml").read_text())
    conf = parse_config(raw)
    assert conf.raw is raw and conf.output_path == f"output/{name}" and conf.as_of_date == dt.date(2026, 1, 1)
    assert sorted(conf.inputs) == ["customers", "loan_payments", "loans", "products", "transactions"]
    assert conf.inputs["loans"].name == "loans" and conf.inputs["loans"].format == "parquet"
    assert conf.spark.extra == {"spark.ui.enabled": "false", "spark.databricks.delta.snapshotPartitions": "2"}
    assert conf.model.features[:2] == ("recency_days", "frequency") and conf.model.k is None
    assert conf.segment_rules == SegmentRules() and conf.table_path("runs") == f"output/{name}/runs"
    assert conf.pricing == PricingConf()  # the shipped configurations keep the documented pricing defaults


def test_values_are_stringified_and_optional_inputs_dropped():
    conf = load_config(TEST_CONF, ["inputs.customers.format=csv", "inputs.customers.options.header=true",
                                   "inputs.customers.options.samplingRatio=0.5", "inputs.loans=null",
                                   "spark.conf.spark.sql.adaptive.enabled=false"])
    assert conf.inputs["customers"].options == {"header": "true", "samplingRatio": "0.5"}
    assert "loans" not in conf.inputs and "loan_payments" in conf.inputs
    assert conf.spark.extra["spark.sql.adaptive.enabled"] == "false"


def run_job(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, f"jobs/{script}", "--conf", "conf/test.yaml", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("script", ["train_segments.py", "build_features.py"])
def test_job_with_a_typo_exits_2_with_one_line_and_no_spark(script):
    result = run_job(script, "--set", "model.kk=3")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    job = script.removesuffix(".py").replace("_", "-")
    assert lines == [f"custseg {job}: error: config: unknown key model.kk; did you mean model.k?"]
    assert "Spark" not in result.stdout + result.stderr


def test_job_with_a_wrong_value_exits_2_with_one_line_and_no_spark():
    result = run_job("train_segments.py", "--set", "model.min_segment_share=1.5")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert lines == ["custseg train-segments: error: config: model.min_segment_share must be between 0 and 1, got 1.5"]
    assert "Spark" not in result.stdout + result.stderr


def test_a_mapped_column_that_is_not_in_the_contract_is_named_with_the_closest_one():
    assert error_of(["inputs.customers.columns.anual_income=income"]) == (
        "config: inputs.customers.columns.anual_income is not a column of the customers contract; "
        "did you mean inputs.customers.columns.annual_income?")


@pytest.mark.parametrize("database", ["x` LOCATION '/tmp/injected' --", "bank.segments", "1st", "a b"])
def test_a_database_name_that_is_not_a_plain_identifier_is_refused(database):
    message = error_of([f"output.database={database}"])
    assert message.startswith("config: output.database must be") and database in message
    assert parse_config({**yaml.safe_load(TEST_CONF.read_text()), "output": {"path": "o", "database": "custseg_bi"}})
