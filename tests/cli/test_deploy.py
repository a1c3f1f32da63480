"""The shipped Kubernetes Indexed Job and Slurm array run `run --shard auto/N` and cover a plan exactly once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloudlulc_edge.cli import app
from cloudlulc_edge.deploy import ScaleOut, pinned, render_k8s_job, render_slurm_array
from cloudlulc_edge.errors import EXIT_USAGE, CloudLULCError

pytestmark = pytest.mark.filterwarnings("ignore:.*assuming offset 0:UserWarning")
RUN_ARGS = ["--variant", "test_tiny", "--allow-untrained", "--tile", "64", "--overlap", "16"]


@pytest.fixture
def plan(bigearthnet_v1, tmp_path) -> Path:
    path = tmp_path / "plan.json"
    assert CliRunner().invoke(app, ["plan", str(bigearthnet_v1), str(path)]).exit_code == 0
    return path


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # the installed console script
    env.update(extra)
    return env


def _done_scenes(out: Path) -> list[str]:
    names = []
    for report in (out / "reports").glob("run-*.json"):
        names += [s["name"] for s in json.loads(report.read_text())["scenes"] if s["status"] == "done"]
    return names


def test_slurm_array_tasks_cover_the_plan_once(plan, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    extra = [f"--extra={a}" for a in (*RUN_ARGS, "--quiet")]
    result = CliRunner().invoke(app, ["deploy", "slurm", str(plan), str(out), "--shards", "3", "--device", "cpu",
                                      "--gpus", "0", *extra])  # fmt: skip
    assert result.exit_code == 0, result.output
    script = tmp_path / "job.sbatch"
    script.write_text(result.output)
    assert "#SBATCH --array=0-2%3" in result.output
    assert "--gres" not in result.output
    for task in range(3):  # what Slurm does: run the script once per array index
        run = subprocess.run(["bash", str(script)], env=_env(SLURM_ARRAY_TASK_ID=str(task)), capture_output=True,
                             text=True, timeout=300, check=False)  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
    pairs = {p["name"] for p in json.loads(plan.read_text())["pairs"]}
    assert sorted(_done_scenes(out)) == sorted(pairs)


def test_k8s_indexed_job_pods_cover_the_plan_once(plan, tmp_path):
    yaml = pytest.importorskip("yaml")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["deploy", "k8s", str(plan), str(out), "--image", "registry/cloudlulc-edge:1",
                                      "--claim", "scenes", "--shards", "2", "--gpus", "0", "--device", "cpu",
                                      *[f"--extra={a}" for a in RUN_ARGS]])  # fmt: skip
    assert result.exit_code == 0, result.output
    job = yaml.safe_load(result.output)
    spec = job["spec"]
    assert job["kind"] == "Job" and spec["completionMode"] == "Indexed" and spec["completions"] == 2
    container = spec["template"]["spec"]["containers"][0]
    assert (
        container["image"] == "registry/cloudlulc-edge:1" and "nvidia.com/gpu" not in container["resources"]["limits"]
    )
    command = container["command"]
    assert command[:2] == ["cloudlulc-edge", "run"] and "auto/2" in command
    exe = shutil.which("cloudlulc-edge", path=_env()["PATH"])
    for index in range(2):  # what the Job controller does: one pod per index
        run = subprocess.run([exe, *command[1:]], env=_env(JOB_COMPLETION_INDEX=str(index)), capture_output=True,
                             text=True, timeout=300, check=False)  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
    assert sorted(_done_scenes(out)) == sorted(p["name"] for p in json.loads(plan.read_text())["pairs"])


def test_gpu_requests_and_bad_sizes():
    import yaml

    job = ScaleOut("/data/plan.json", "/data/out", shards=4, gpus=2, input_roots=("/data/in",))
    container = yaml.safe_load(render_k8s_job(job, "img", "claim"))["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": "2"}
    with pytest.raises(CloudLULCError):
        ScaleOut("p", "o", shards=0)


HOSTILE = ["/data/$(touch pwned).json", "/data/`touch pwned`", '/data/a"b', "/data/it's", "/data/a;touch pwned"]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_slurm_scripts_pass_hostile_paths_and_arguments_as_data(hostile, tmp_path):
    """What bash would run is exactly the intended argument list: nothing is substituted or executed."""
    job = ScaleOut(hostile, "/data/out", shards=2, gpus=0, extra=(f"--checkpoint={hostile}",), input_roots=(hostile,))
    script = render_slurm_array(job)
    exec_line = next(line for line in script.splitlines() if line.startswith("exec "))
    # Replace `exec` by a printer of its arguments and let bash parse the line.
    probe = tmp_path / "probe.sh"
    probe.write_text('args() { printf "%s\\0" "$@"; }\n' + "args" + exec_line.removeprefix("exec"))
    run = subprocess.run(["bash", str(probe)], cwd=tmp_path, capture_output=True, check=True)
    assert run.stdout.split(b"\0")[:-1] == [a.encode() for a in job.command]
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"plan": "/data/plan.json\nrm -rf /"}, "control characters"),
        ({"extra": ("--quiet\n--tile=9",)}, "control characters"),
        ({"name": "Job; rm"}, "Kubernetes name"),
        ({"backend": "torch --device cpu"}, "backend must be"),
        ({"device": "cuda\n"}, "device must be"),
        ({"input_roots": ("/data/in\n--model=/evil",)}, "control characters"),
    ],
)
def test_values_that_would_become_code_are_refused(fields, message):
    with pytest.raises(CloudLULCError, match=message):
        ScaleOut(**{"plan": "/data/plan.json", "output": "/data/out", "shards": 2, **fields})


def test_k8s_manifests_hold_hostile_values_as_strings():
    import yaml

    for hostile in [*HOSTILE, '/data/x", "--model", "/evil', "/data/x: {injected: 1}", "/data/# not a comment"]:
        job = ScaleOut(hostile, "/data/out", shards=2, gpus=0, extra=(hostile,), input_roots=(hostile,))
        doc = yaml.safe_load(render_k8s_job(job, "registry/img:1", "scenes"))
        (container,) = doc["spec"]["template"]["spec"]["containers"]
        assert container["command"] == job.command, hostile
        assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
    for image, claim, mount in [("img\nkind: Pod", "scenes", "/data"), ("img", "Scenes!", "/data"),
                                ("img", "scenes", "data")]:  # fmt: skip
        with pytest.raises(CloudLULCError):
            render_k8s_job(ScaleOut("/p", "/o", shards=1, input_roots=("/i",)), image, claim, mount)
    with pytest.raises(CloudLULCError, match="whitespace"):
        render_slurm_array(ScaleOut("/p", "/data/my out", shards=1, input_roots=("/i",)))
    with pytest.raises(CloudLULCError, match="memory"):
        render_slurm_array(ScaleOut("/p", "/o", shards=1, input_roots=("/i",)), memory="16G\n#SBATCH --x")


def test_job_files_name_the_input_root_the_workers_may_read(plan, tmp_path):
    """`run` trusts only --input-root: deploy pins the plan's recorded folder, or refuses without one."""
    recorded = json.loads(plan.read_text())["options"]["input_root"]
    command = pinned(ScaleOut(str(plan), "/data/out", shards=2)).command
    assert command[command.index("--input-root") + 1] == recorded
    given = pinned(ScaleOut(str(plan), "/data/out", shards=2, input_roots=("/mnt/in",))).command
    assert given[given.index("--input-root") + 1] == "/mnt/in" and recorded not in given
    with pytest.raises(CloudLULCError, match=r"pass --input-root .*not readable here"):
        render_slurm_array(ScaleOut(str(tmp_path / "elsewhere.json"), "/data/out", shards=2))
    result = CliRunner().invoke(app, ["deploy", "slurm", str(tmp_path / "elsewhere.json"), "/data/out"])
    assert result.exit_code == EXIT_USAGE and "--input-root" in result.output


def test_the_systemd_unit_runs_watch_with_exactly_the_given_words():
    import configparser

    from cloudlulc_edge.deploy import WatchService, render_systemd_unit

    extra = ("--settle=60", "--checkpoint=/opt/models/v%1", "--dem=/srv/dem/$HOME")
    unit = render_systemd_unit(WatchService("/srv/incoming", "/srv/maps", extra=extra))
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(unit)
    service = parser["Service"]
    words = [w.replace("%%", "%").replace("$$", "$") for w in service["ExecStart"].split()]
    assert words == ["/usr/local/bin/cloudlulc-edge", "watch", "/srv/incoming", "/srv/maps", "--log-format", "jsonl",
                     *extra]  # fmt: skip
    assert service["KillSignal"] == "SIGTERM" and "130" in service["SuccessExitStatus"].split()
    assert parser["Install"]["WantedBy"] == "multi-user.target"
    for bad in ({"input_dir": "/srv/in box"}, {"output_dir": "maps"}, {"extra": ("--x\nExecStartPre=/bin/rm",)},
                {"user": "root; rm"}, {"extra": ('--dem="/a b"',)}):  # fmt: skip
        with pytest.raises(CloudLULCError):
            WatchService(**{"input_dir": "/srv/incoming", "output_dir": "/srv/maps", **bad})


def test_the_container_entrypoint_runs_watch_on_its_folders(tmp_path):
    from cloudlulc_edge.deploy import render_container_entrypoint

    script = tmp_path / "entrypoint.sh"
    script.write_text(render_container_entrypoint())
    incoming, out = tmp_path / "incoming", tmp_path / "maps"
    incoming.mkdir()
    run = subprocess.run(["sh", str(script), *RUN_ARGS, "--poll", "0.1", "--exit-when-idle", "0.5"],
                         env=_env(WATCH_INPUT=str(incoming), WATCH_OUTPUT=str(out)), capture_output=True, text=True,
                         timeout=300, check=False)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert events[0]["event"] == "watch_start" and events[0]["input_dir"] == str(incoming)
    assert events[-1]["event"] == "watch_end" and Path(events[-1]["report"]).is_file()


def test_shards_refuse_a_plan_re_made_after_the_job_was_generated(plan, tmp_path):
    from cloudlulc_edge.pairing import plan_file_digest

    digest = plan_file_digest(plan)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["deploy", "slurm", str(plan), str(out), "--shards", "2", "--device", "cpu",
                                      "--gpus", "0", *[f"--extra={a}" for a in (*RUN_ARGS, "--quiet")]])  # fmt: skip
    assert result.exit_code == 0 and f"--plan-digest {digest}" in result.output
    script = tmp_path / "job.sbatch"
    script.write_text(result.output)
    first = subprocess.run(["bash", str(script)], env=_env(SLURM_ARRAY_TASK_ID="0"), capture_output=True, text=True,
                           timeout=300, check=False)  # fmt: skip
    assert first.returncode == 0, first.stdout + first.stderr
    (report,) = [json.loads(p.read_text()) for p in (out / "reports").glob("run-*shard-0-of-2.json")]
    assert report["plan"] == {"file": str(plan), "digest": digest, "pairs": 6}
    doc = json.loads(plan.read_text())  # the plan is re-made with one pair fewer while the array runs
    doc["pairs"] = doc["pairs"][1:]
    plan.write_text(json.dumps(doc))
    second = subprocess.run(["bash", str(script)], env=_env(SLURM_ARRAY_TASK_ID="1"), capture_output=True, text=True,
                            timeout=300, check=False)  # fmt: skip
    assert second.returncode == EXIT_USAGE, second.stdout + second.stderr
    assert "re-made or edited" in second.stdout + second.stderr
    assert not list((out / "reports").glob("run-*shard-1-of-2.json")), "the refused shard mapped nothing"
