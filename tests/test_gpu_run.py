"""The prepared GPU run (issue 18) end to end as a dry run on the CPU, and its CPU-side docs update."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import REPO_ROOT, last_error_line, run_script

from bundle.gpu_run.docs_update import BEGIN, DOCS_TARGETS, END, OWNED_PREFIX, generated_block, replace_block
from bundle.gpu_run.steps import DEFAULT_STEPS

MAX_FILES = 8  # the limit on what the run leaves under OUT


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """`scripts/gpu_run.py OUT --dry-run` with every step, once for the module: (OUT, stdout, work folder)."""
    out = tmp_path_factory.mktemp("gpu_out")
    work = tmp_path_factory.mktemp("gpu_work")
    steps = [*DEFAULT_STEPS, "generalist"]  # every step, the opt-in one too, in one dry run
    proc = run_script("gpu_run", str(out), "--dry-run", "--work-dir", str(work), "--steps", *steps, timeout=900)
    log = work / "gpu_run.log"
    assert proc.returncode == 0, proc.stderr[-3000:] + (log.read_text()[-3000:] if log.is_file() else "")
    return out, proc.stdout, work


def test_dry_run_runs_every_step_and_keeps_to_the_file_limit(dry_run: tuple[Path, str, Path]) -> None:
    out, stdout, _ = dry_run
    run = json.loads((out / "run.json").read_text())
    assert list(run["steps"]) == [*DEFAULT_STEPS, "generalist"]
    assert all(step["ok"] for step in run["steps"].values()), run["steps"]
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= MAX_FILES, files
    assert {"run.json", "summary.md", "crossval.json", "benchmark.json"} <= set(files)
    crossval = json.loads((out / "crossval.json").read_text())
    assert crossval["per_subject"], "the cross-validation wrote no per-subject rows"
    for row in crossval["per_subject"]:
        assert float(row["network_psnr"]) > 0 and float(row["gaussian_psnr"]) > 0
    bench = json.loads((out / "benchmark.json").read_text())
    assert {(r["network"], r["base_features"], r["precision"]) for r in bench["inference"]} == {
        (n, w, p)
        for n, w in (("paper", 32), ("shipped generalist", 16), ("generalist GPU profile", 32))
        for p in ("fp32", "bf16")
    }
    assert all(t["slices_per_second"] > 0 for t in bench["training"])
    assert "dry run" in stdout and "| subject |" in stdout


def test_gpu_report_writes_one_block_per_docs_file_and_replaces_it(
    dry_run: tuple[Path, str, Path], tmp_path: Path
) -> None:
    out, _, _ = dry_run
    docs = tmp_path / "docs"
    shutil.copytree(REPO_ROOT / "docs", docs, ignore=shutil.ignore_patterns("*.png"))
    before = {name: (docs / name).read_text() for name in DOCS_TARGETS if (docs / name).is_file()}

    refused = run_script("gpu_report", str(out), "--docs-dir", str(docs))
    assert refused.returncode != 0 and "dry run" in last_error_line(refused)
    assert {name: (docs / name).read_text() for name in before} == before  # nothing written
    assert {p.name for p in (docs / "results").iterdir()} == {
        p.name for p in (REPO_ROOT / "docs" / "results").iterdir() if p.suffix != ".png"
    }

    for _ in range(2):  # a second run replaces the block instead of adding one
        proc = run_script("gpu_report", str(out), "--docs-dir", str(docs), "--allow-dry-run")
        assert proc.returncode == 0, proc.stderr
    for name in DOCS_TARGETS:
        text = (docs / name).read_text()
        assert "python scripts/gpu_run.py" in text and "GPU:" in text, name
        if not name.startswith(OWNED_PREFIX):  # a shared page: one generated block, the text around it kept
            assert text.count(BEGIN) == 1 and text.count(END) == 1, name
            assert text.startswith(before[name].split(BEGIN)[0].rstrip("\n")), f"{name}: text outside the block changed"
    assert "| subject |" in (docs / "results/paper_profile_gpu.md").read_text()
    assert "ms per slice" in (docs / "performance.md").read_text()


def test_gpu_report_rejects_a_folder_that_is_not_a_gpu_run(tmp_path: Path) -> None:
    proc = run_script("gpu_report", str(tmp_path), "--docs-dir", str(tmp_path))
    assert proc.returncode != 0
    assert str(tmp_path) in last_error_line(proc) and "run.json" in last_error_line(proc)


def test_replace_block_appends_then_replaces_and_rejects_unpaired_markers() -> None:
    once = replace_block("# title\n\ntext\n", "first")
    assert once.startswith("# title\n\ntext\n") and "first" in once
    twice = replace_block(once, "second")
    assert "first" not in twice and "second" in twice and twice.count(BEGIN) == 1
    assert generated_block(twice) == "second" and generated_block("no block here") is None
    with pytest.raises(ValueError, match="unpaired"):
        replace_block(f"a\n{END}\nb\n{BEGIN}\n", "x")


def test_dry_run_of_the_generalist_step_trains_and_evaluates_the_generalist_profile(
    dry_run: tuple[Path, str, Path],
) -> None:
    out, _, work = dry_run
    result = json.loads((out / "generalist.json").read_text())
    assert result["ok"] and result["train_exit"] == 0 and result["evaluate_exit"] == 0
    assert "## Targets: gpu" in result["report_md"] and "DRF" in result["report_md"]
    manifest = json.loads((work / "generalist" / "checkpoints" / "manifest.json").read_text())
    assert manifest["settings"]["profile"].strip("'\"") == "generalist-gpu"
