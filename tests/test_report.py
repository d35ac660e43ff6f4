"""The segment report of the golden run (tests/golden.py): every file written, images that decode, one
self-contained page."""
from __future__ import annotations

import base64
import shutil
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pyspark.ml import PipelineModel

from custseg.contract import outputs as tables
from custseg.flows.segment_report import REPORT_FILE, write_report
from custseg.platform.ledger import features_for_date
from custseg.platform.locations import model_location
from custseg.platform.storage import read_delta
from custseg.report.data import RunData, held_run, principal_axes, read_run, scatter_data
from custseg.report.figures import FIGURES, plot_risk_by_segment, population_rate
from custseg.report.html import render_html
from custseg.transforms.sampling import bounded_sample
from golden import AS_OF, LATER


@pytest.fixture(scope="module")
def reported(golden):
    """The golden run's report, written without a run id: that of the latest training run."""
    return golden.conf, golden.train, golden.report_path


class Collector(HTMLParser):
    """Every start tag with its attributes, every table row's cell texts and all text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.rows: list[list[str]] = []
        self.text: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(text: str) -> Collector:
    collector = Collector()
    collector.feed(text)
    collector.close()
    return collector


def test_job_writes_every_file_of_the_latest_run(reported):
    conf, record, path = reported
    assert path == Path(conf.output_path) / "reports" / record.run_id / REPORT_FILE
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([*FIGURES, REPORT_FILE])


@pytest.mark.parametrize("name", FIGURES)
def test_each_png_decodes_at_a_readable_size(reported, name):
    _, _, path = reported
    with Image.open(path.parent / name) as image:
        assert image.format == "PNG"
        width, height = image.size
        pixels = np.asarray(image.convert("L"), dtype=float)
        dpi = image.info.get("dpi", (0, 0))[0]
    assert width > 300 and height > 300
    assert pixels.std() > 10  # something is drawn, not a blank canvas
    assert dpi == pytest.approx(110, abs=1)


def test_html_is_self_contained_with_every_segment_and_all_figures(spark, reported):
    conf, record, path = reported
    page = parse(path.read_text(encoding="utf-8"))
    tags = [t for t, _ in page.tags]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    for _, attrs in page.tags:
        for key in ("src", "href"):
            value = (attrs.get(key) or "").lower()
            assert "http://" not in value and "https://" not in value, (key, value[:80])
    images = [attrs["src"] for tag, attrs in page.tags if tag == "img"]
    assert len(images) == len(FIGURES)
    prefix = "data:image/png;base64,"
    assert all(src.startswith(prefix) for src in images)
    embedded = {base64.b64decode(src[len(prefix):]) for src in images}
    assert embedded == {(path.parent / name).read_bytes() for name in FIGURES}

    profiles = (read_delta(spark, conf.table_path(tables.SEGMENT_PROFILES))
                .filter(f"run_id = '{record.run_id}'").select("segment_name", "size").collect())
    assert len(profiles) == record.metrics["segments"]
    for profile in profiles:
        assert any(row[:2] == [profile["segment_name"], f"{profile['size']:,}"] for row in page.rows), profile
    text = " ".join(page.text)
    assert record.run_id in text and record.metrics["reason"] in text
    assert any(row[0] == "Chosen K" and row[1] == str(record.metrics["chosen_k"]) for row in page.rows)
    assert any(row[0] == "transactions" for row in page.rows)  # input counts from the build_features run
    audit = (read_delta(spark, conf.table_path(tables.FAIRNESS_AUDIT))
             .filter(f"run_id = '{record.run_id}' AND segment_id IS NULL").collect())
    assert audit, "the golden run audits sex and age"
    for row in audit:  # the overall rows, one per attribute and group, with their flags
        shown = [r for r in page.rows if r[:2] == [row["attribute"], row["group"]]]
        assert len(shown) == 1 and (shown[0][-1] == "below four-fifths") == row["is_flagged"], row


IDENTITY = list(range(10))  # segment id of each cluster index


@pytest.fixture(scope="module")
def read_back(spark, reported):
    """What the report of the golden training run reads from its Delta outputs, after the later date's scoring."""
    conf, record, _ = reported
    return read_run(spark, conf, record.run_id)


def test_the_rows_a_run_holds_are_those_the_report_reads_back(reported, read_back, golden):
    conf, record, _ = reported
    held = held_run(conf, record.report, record.row, golden.features.row)
    assert held.profiles and held.k_rows and held.fairness and held.characteristics and held.rejected
    assert held.run["status"] == "succeeded" and held.inputs["transactions"]["rejected"] > 0
    # The migration shown is into the model's latest date: at training, none (no earlier date); read back
    # after the later date's scoring, that date's (the next test).
    assert held.migration == []
    assert replace(held, migration=read_back.migration) == read_back


def test_the_report_shows_the_migration_into_the_models_latest_date(spark, reported, read_back):
    conf, record, _ = reported
    moves = read_back.migration
    assert {(m["from_as_of_date"], m["as_of_date"]) for m in moves} == {(AS_OF, LATER)}
    sizes = {r["segment_id"]: r["size"] for r in read_delta(spark, conf.table_path(tables.SEGMENT_PROFILES))
             .filter(f"run_id = '{record.run_id}'").collect()}
    for segment, size in sizes.items():  # every training customer went somewhere (or left)
        assert sum(m["customers"] for m in moves if m["from_segment_id"] == segment) == size
        assert sum(m["from_share"] for m in moves if m["from_segment_id"] == segment) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def model(reported):
    conf, record, _ = reported
    return PipelineModel.load(model_location(conf.output_path, record.run_id))


def test_scatter_sample_is_bounded_and_seeded(spark, reported, model):
    conf, _, _ = reported
    features_df = features_for_date(spark, conf.output_path, AS_OF)
    first = scatter_data(model, IDENTITY, features_df, 50, conf.seed)
    second = scatter_data(model, IDENTITY, features_df, 50, conf.seed)
    assert first.points.shape == (50, 2)
    np.testing.assert_array_equal(first.points, second.points)
    np.testing.assert_array_equal(first.segments, second.segments)

    def ids(seed: int, total: int | None = None) -> list[str]:
        return [r["customer_id"] for r in bounded_sample(features_df, 50, seed, total).collect()]

    total = features_df.count()
    assert total > 3 * 50  # so the hash pre-filter is applied
    assert ids(conf.seed) == ids(conf.seed) == ids(conf.seed, total=total)  # the hash pre-filter changes nothing
    assert ids(conf.seed) != ids(conf.seed + 1)


def test_projected_centroids_sit_at_their_segments_mean(spark, reported, model):
    conf, record, _ = reported
    # the golden run is the first training of its output: its segment ids are the cluster indexes
    everyone = scatter_data(model, IDENTITY, features_for_date(spark, conf.output_path, AS_OF), 10_000, conf.seed)
    held = record.report.scatter  # drawn from the features the training run held, for run_pipeline's report
    for name in ("points", "segments"):
        np.testing.assert_array_equal(getattr(held, name), getattr(everyone, name))
    assert held.centers.keys() == everyone.centers.keys()
    for segment, center in everyone.centers.items():
        np.testing.assert_array_equal(held.centers[segment], center)
    assert (held.explained, held.drivers) == (everyone.explained, everyone.drivers)
    assert len(everyone.segments) == features_for_date(spark, conf.output_path, AS_OF).count()
    assert 0 < everyone.explained[1] <= everyone.explained[0] and sum(everyone.explained) <= 1 + 1e-9
    for segment in np.unique(everyone.segments):
        mean = everyone.points[everyone.segments == segment].mean(axis=0)
        np.testing.assert_allclose(everyone.centers[int(segment)], mean, atol=0.05)


def test_population_rate_weights_segments_by_their_borrowers():
    profiles = [
        {"size": 100, "borrower_share": 0.5, "default_rate": 0.2},
        {"size": 300, "borrower_share": 0.1, "default_rate": 0.5},
        {"size": 50, "borrower_share": None, "default_rate": None},   # no loans table rows: no weight
        {"size": 10, "borrower_share": 0.0, "default_rate": None},
    ]
    assert population_rate(profiles, "default_rate") == pytest.approx((0.2 * 50 + 0.5 * 30) / 80)
    assert population_rate(profiles[2:], "default_rate") is None


def test_the_risk_chart_says_a_rate_is_unknown_instead_of_drawing_nothing():
    import matplotlib.pyplot as plt

    # Loans without a loan_payments table: the default rate is known, the late-payment rate is not.
    profiles = [{"segment_id": s, "segment_name": f"segment {s}", "risk_tier": "medium", "size": 400,
                 "borrowers": 200, "default_rate_ever": 0.02, "default_rate_ever_ci_low": 0.008,
                 "default_rate_ever_ci_high": 0.05, "late_payment_rate_12m": None,
                 "late_payment_rate_12m_ci_low": None, "late_payment_rate_12m_ci_high": None} for s in (0, 1)]
    fig = plot_risk_by_segment(profiles, late_window_days=365)
    texts = [t.get_text() for t in fig.axes[0].texts]
    plt.close(fig)
    assert texts.count("late-payment rate (365 days): unknown (not in the inputs)") == 2
    assert texts.count("2.0%") == 2  # the default rates still drawn, with their values


def test_an_age_audit_with_most_customers_under_18_is_warned_of_as_band_codes():
    from custseg.report.html import fairness_warnings

    def row(group, share, segment_id=None):
        return {"attribute": "age_band", "group": group, "share": share, "segment_id": segment_id}

    codes = [row("under 18", 0.998), row("65+", 0.002), row("under 18", 1.0, segment_id=0)]
    assert fairness_warnings(codes) == [
        "100% of the customers are under 18 in the fairness audit's age bands: if the age column holds band codes "
        "rather than years, give the bands as a column of their own (e.g. age_band, listed in protected_attributes "
        "in place of age)"]
    assert fairness_warnings([row("under 18", 0.02), row("25-34", 0.98), row("under 18", 0.9, segment_id=1)]) == []
    assert fairness_warnings([row("under 18", None)]) == []  # a suppressed group has no share


def test_html_escapes_every_text():
    hostile = '<script src="https://evil.example/x.js"></script> & "Co"'
    named = "<script>alert(1)</script> & co"
    data = RunData(
        run_id="r<1>", as_of=AS_OF, run={}, metrics={"reason": hostile, "warnings": [hostile]}, params={},
        inputs={"customers": {"read": 3, "accepted": 2, "rejected": 1}},
        rejected=[{"source_table": "customers", "reason": "<b>bad</b>", "rows": 1}],
        profiles=[{"segment_id": 0, "segment_name": hostile, "size": 3, "share": 1.0, "risk_tier": "low"},
                  {"segment_id": 1, "segment_name": named, "size": 1234, "share": None, "risk_tier": None}],
        k_rows=[], features=["monetary"], z={},
        fairness=[{"attribute": "sex", "group": named, "customers": 40, "share": 0.5, "favourable_share": 0.1,
                   "adverse_share": 0.2, "disparity_ratio": None, "adverse_disparity_ratio": 0.7, "is_flagged": True,
                   "is_suppressed": False},
                  {"attribute": "sex", "group": "b", "customers": 40, "share": 0.5, "favourable_share": 0.0,
                   "adverse_share": 0.0, "disparity_ratio": None, "adverse_disparity_ratio": None, "is_flagged": False,
                   "is_suppressed": False}],
        min_group_size=20, migration=[],
        opportunities=[{"segment_id": 0, "product": named, "is_recommended": True, "rank": 1,
                        "recommendation": f"offer {hostile}"}],
        characteristics=[{"aspect": "region", "segment_id": 0, "value": named, "share": 0.5,
                          "population_share": 0.25, "lift": 2.0}],
        top_offers=3,
    )
    text = render_html(data, {name: b"\x89PNG" for name in FIGURES})
    assert "Spend mix skipped: no purchase in the lookback window has a transaction category." in text
    assert '<p class="tier-high">Warning: &lt;script src=&#34;https://evil.example' in text  # the run's warnings
    page = parse(text)
    assert ["Customers", "1,237 of the 2 accepted: those signed up before the as-of date"] in page.rows
    assert [t for t, _ in page.tags if t in ("script", "b")] == []
    assert "https://" not in " ".join(str(v) for _, attrs in page.tags for v in attrs.values())
    assert any(row[:2] == [hostile, "3"] for row in page.rows)
    assert any(row[:3] == [named, "1,234", "–"] for row in page.rows)  # a missing share is a dash, not "None"
    assert next(row for row in page.rows if row[:2] == [named, "1,234"])[-2:] == ["–", "–"]  # no APR band, no limit
    assert ["sex", "b", "40", "50.0%", "0.0%", "0.0%", "no favourable action", "no adverse action", ""] in page.rows
    assert ["sex", named, "40", "50.0%", "10.0%", "20.0%", "no favourable action", "0.70", "below four-fifths"] \
        in page.rows
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in text
    assert "r&lt;1&gt;" in text and "<b>" not in text and "None" not in text


def test_principal_axes_are_those_of_spark_ml_pca(spark):
    from pyspark.ml.feature import PCA
    from pyspark.ml.linalg import Vectors

    rng = np.random.default_rng(3)
    base = rng.normal(size=(400, 2))
    x = np.column_stack([base[:, 0], 0.8 * base[:, 0] + 0.2 * base[:, 1], base[:, 1], rng.normal(size=400) * 0.1])
    axes, share = principal_axes(x, 2)
    df = spark.createDataFrame([(Vectors.dense(row),) for row in x.tolist()], ["v"])
    spark_pca = PCA(k=2, inputCol="v").fit(df)
    # An axis is defined up to its sign.
    np.testing.assert_allclose(np.abs(axes), np.abs(spark_pca.pc.toArray()), atol=1e-9)
    np.testing.assert_allclose(share, spark_pca.explainedVariance.toArray(), atol=1e-9)
    assert share[0] > share[1] > 0


def test_report_is_written_through_the_file_system_of_a_file_uri_with_a_space(spark, reported, tmp_path):
    conf, record, golden_report = reported
    folder = tmp_path / "my reports"
    shutil.copytree(conf.output_path, folder, ignore=shutil.ignore_patterns("reports"))  # the run, no report yet
    # With the model the training run held in memory, as run_pipeline does: the same figures as the golden
    # report's, which loaded the saved model.
    uri = write_report(spark, replace(conf, output_path=f"file://{folder}"), record.run_id, model=record.model)
    assert uri == f"file://{folder}/reports/{record.run_id}/{REPORT_FILE}"
    written = folder / "reports" / record.run_id
    assert sorted(p.name for p in written.iterdir()) == sorted([*FIGURES, REPORT_FILE])
    page = parse((written / REPORT_FILE).read_text(encoding="utf-8"))
    images = [attrs["src"] for tag, attrs in page.tags if tag == "img"]
    prefix = "data:image/png;base64,"
    assert [base64.b64decode(src[len(prefix):]) for src in images] == [(written / n).read_bytes() for n in FIGURES]
    assert record.model is not None
    for name in FIGURES:
        assert (written / name).read_bytes() == (golden_report.parent / name).read_bytes(), name
