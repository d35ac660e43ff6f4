"""The jar folder that sessions and submit.sh use instead of resolving Delta through Ivy at every start."""
from __future__ import annotations

import json
import zipfile

from custseg.platform import jars


def make_folder(tmp_path, package=jars.DELTA_PACKAGE):
    folder = tmp_path / "jars"
    folder.mkdir(parents=True)
    for name in ("a.jar", "b.jar"):
        with zipfile.ZipFile(folder / name, "w") as archive:
            archive.writestr("x.class", name * 10)
    sizes = {p.name: p.stat().st_size for p in folder.glob("*.jar")}
    (folder / jars.MANIFEST).write_text(json.dumps({"package": package, "jars": sizes}))
    return folder


def test_a_complete_folder_gives_every_listed_jar(tmp_path):
    folder = make_folder(tmp_path)
    assert jars.resolved_jars(str(folder)) == [str(folder / "a.jar"), str(folder / "b.jar")]


def test_a_missing_cut_or_foreign_folder_is_not_used(tmp_path):
    folder = make_folder(tmp_path)
    (folder / "b.jar").write_bytes(b"")  # cut short: size differs from the manifest
    assert jars.resolved_jars(str(folder)) is None
    assert jars.resolved_jars(str(make_folder(tmp_path / "other", package="io.delta:delta-spark_x:0"))) is None
    assert jars.resolved_jars(str(tmp_path / "nowhere")) is None


def test_empty_and_non_zip_downloads_are_refused(tmp_path):
    empty, text = tmp_path / "empty.jar", tmp_path / "page.jar"
    empty.write_bytes(b"")
    text.write_text("<html>proxy error</html>")
    good = make_folder(tmp_path) / "a.jar"
    assert (jars._broken(str(empty)), jars._broken(str(text)), jars._broken(str(good))) == (
        "empty", "not a jar (zip)", None)


def test_the_folder_is_per_delta_version_and_can_be_moved(monkeypatch, tmp_path):
    monkeypatch.delenv("CUSTSEG_JARS_DIR", raising=False)
    assert jars.jars_dir().endswith("io.delta_delta-spark_4.2_2.13_4.4.0")
    monkeypatch.setenv("CUSTSEG_JARS_DIR", str(tmp_path))
    assert jars.jars_dir() == str(tmp_path)
