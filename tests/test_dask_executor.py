"""The Dask executor: same predictions as the local one, worker deaths, the shared-store
check, cluster files and the SLURM job script (checked without SLURM)."""

from __future__ import annotations

import dataclasses

import concurrent.futures as cf
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from cielib import cluster_file as clf
from cielib import config, execute, plan, runs, store
from conftest import ROOT, TINY_PROFILE

from cielib import dask_executor as dx

EXAMPLE = ROOT / "configs" / "clusters" / "slurm.example.toml"


def _train_specs(tmp_path: Path, runs_dir: Path, seeds=(0, 1), *, gpus: int = 0) -> list[runs.RunSpec]:
    """Training runs of the tiny digits profile (one epoch), one per seed; with ``gpus``
    the profile asks for GPUs, so each training run reserves one (Stage.resources)."""
    prof_path = tmp_path / "tiny.toml"
    prof_path.write_text(TINY_PROFILE)
    profile = dataclasses.replace(config.load_profile(prof_path), gpus=gpus)
    p = plan.build_plan(profile, plan.Overrides(epochs=1, seeds=list(seeds)), runs_dir=runs_dir)
    return p.by_stage("train")


class _Killer(threading.Thread):
    """Kills (SIGKILL) the worker process of each new attempt at a run, up to ``times``.

    ``run_spec`` names its temporary directory ``.tmp-<run_id>-<pid>`` after the process
    executing it, the Dask worker: killing that pid is a worker dying in the middle of a run.
    """

    def __init__(self, stage_dir: Path, run_id: str, times: int) -> None:
        super().__init__(daemon=True)
        self.stage_dir, self.run_id, self.times = stage_dir, run_id, times
        self.killed: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and len(self.killed) < self.times:
            for tmp in self.stage_dir.glob(f".tmp-{self.run_id}-*"):
                pid = int(tmp.name.rsplit("-", 1)[1])
                if pid not in self.killed:
                    os.kill(pid, signal.SIGKILL)
                    self.killed.append(pid)
            time.sleep(0.02)


def test_importing_cielib_and_a_local_run_import_no_dask(tmp_path):
    """The registry imports the Dask module only for --executor dask: importing
    cielib.pipeline, making its executor for ``--executor local`` and running a (toy)
    notebook through it imports no Dask module."""
    nb = tmp_path / "toy.py"
    nb.write_text('# %% tags=["parameters"]\nrun_dir = "."\nx = 1\n\n# %%\nassert x == 1\n')
    code = (
        "import sys\nfrom pathlib import Path\nimport cielib.pipeline as p\n"
        "from cielib import config, execute, runs\n"
        f"runs_dir = Path({str(tmp_path / 'runs')!r})\n"
        "ex = p.make_executor(p.Options(executor='local'), jobs=1, runs_dir=runs_dir, "
        "profile=config.load_profile('quick'))\n"
        "assert isinstance(ex, execute.LocalExecutor)\n"
        f"spec = runs.RunSpec('toy', {str(nb)!r}, {{'x': 1}})\n"
        "try:\n    (res,) = execute.run_plan([spec], runs_dir=runs_dir, executor=ex)\n"
        "finally:\n    ex.shutdown()\n"
        "assert res.status == 'ran', res\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed', 'dask_jobqueue')"
        " or m == 'cielib.dask_executor']\n"
        "assert not bad, bad\nprint('ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert res.returncode == 0 and "ok" in res.stdout, res.stdout[-2000:] + res.stderr[-2000:]


def test_executors_are_a_registry_with_dask_registered_lazily():
    assert set(execute.executors.names()) >= {"local", "local-fresh", "dask"}
    assert execute.executors.get("dask") is dx.DaskKind
    assert execute.executors.get("local") is execute.LocalKind

    class Toy(execute.ExecutorKind):
        @classmethod
        def create(cls, *, jobs, **options):
            return execute.LocalExecutor(jobs=jobs)

    reg = execute.ExecutorRegistry()
    reg.register("toy", Toy)
    assert isinstance(reg.create("toy", jobs=1), execute.LocalExecutor)
    with pytest.raises(TypeError, match="ExecutorKind subclass"):
        reg.register("bad", object)


class _RecordingClient:
    """Records client.submit's keyword arguments; the Dask future never completes."""

    def __init__(self):
        self.calls: list[dict] = []

    def submit(self, fn, *args, **kwargs):
        self.calls.append(kwargs)

        class _Fut:
            def add_done_callback(self, cb):
                pass

        return _Fut()


def test_a_gpu_marked_stage_reaches_the_dask_submit_call(tmp_path):
    """Stage.resources (the training stage: one GPU when the profile has GPUs) is planned
    into RunSpec.resources, and that is what the Dask executor reserves."""
    from cielib import stages

    prof_path = tmp_path / "tiny.toml"
    prof_path.write_text(TINY_PROFILE.replace('[profile]\n', '[profile]\ngpus = 1\n'))
    profile = config.load_profile(prof_path)
    assert profile.gpus == 1
    train = next(s for s in stages.STAGES if s.name == "train")
    assert train.resources(profile) == {clf.GPU_RESOURCE: 1}
    p = plan.build_plan(profile, plan.Overrides(), runs_dir=tmp_path / "runs")
    client = _RecordingClient()
    ex = dx.DaskExecutor(client, gpus=1, capacity=1)
    ex._tokens[str((tmp_path / "runs").absolute())] = "token"
    for spec in p.specs:
        ex.submit(spec, str(tmp_path / "runs"))
    got = {s.stage: c["resources"] for s, c in zip(p.specs, client.calls)}
    assert got["train"] == {"GPU": 1}, got
    assert all(r is None for stage, r in got.items() if stage != "train"), got
    # without GPUs in the profile no run reserves one
    cpu = plan.build_plan(config.load_profile(_tiny(tmp_path)), plan.Overrides(),
                          runs_dir=tmp_path / "runs")
    assert all(s.resources == {} for s in cpu.specs)


def _tiny(tmp_path: Path) -> Path:
    path = tmp_path / "cpu.toml"
    path.write_text(TINY_PROFILE)
    return path


def test_example_slurm_file_job_script_without_slurm():
    spec = clf.load_cluster_file(EXAMPLE)
    cluster = clf.slurm_cluster(spec)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    lines = script.splitlines()
    for directive in ("#SBATCH -p gpu", "#SBATCH -A my-project", "#SBATCH -t 04:00:00",
                      "#SBATCH --gres=gpu:1", "#SBATCH --cpus-per-task=8",
                      "#SBATCH --constraint=a100"):
        assert directive in lines, script
    (worker,) = [ln for ln in lines if "distributed.cli.dask_worker" in ln]
    assert "--resources GPU=1" in worker and "--nthreads 1" in worker, worker
    assert f"cd {ROOT}" in lines  # workers import this checkout's cielib
    assert "module load cuda/12.4" in lines and "export TF_CPP_MIN_LOG_LEVEL=2" in lines


def test_adaptive_cpu_only_cluster_file(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[cluster]\nkind = "slurm"\npartition = "cpu"\ncores = 4\nmemory = "8GB"\n'
                 'processes = 4\nadaptive = { minimum = 0, maximum = 5 }\n')
    spec = clf.load_cluster_file(f)
    assert spec.workers == 20 and spec.adaptive == (0, 5)
    cluster = clf.slurm_cluster(spec)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH -p cpu" in script and "--gres" not in script and "--resources" not in script
    assert "--nworkers 4" in script and "--nthreads 1" in script and "--cpus-per-task=4" in script


BASE = {"kind": "slurm", "queue": "q", "cores": 4, "memory": "8GB", "jobs": 2}


@pytest.mark.parametrize("change, words", [
    ({"kind": "pbs"}, ["kind = 'pbs'", "'slurm'"]),
    ({"cores": 0}, ["cores = 0", ">= 1"]),
    ({"memory": "lots"}, ["memory = 'lots'", "16GB"]),
    ({"walltime": "4 hours"}, ["walltime = '4 hours'", "HH:MM:SS"]),
    ({"processes": 8}, ["processes = 8", "cores = 4"]),
    ({"gpus": 2}, ["gpus = 2", "0 or 1"]),
    ({"gpus": 1, "processes": 2}, ["processes = 2", "every GPU"]),
    ({"jobs": None}, ["exactly one of jobs"]),
    ({"jobs": None, "adaptive": {"minimum": 3, "maximum": 1}}, ["adaptive", "M <= N"]),
    ({"adaptive": {"minimum": 0, "maximum": 1}}, ["exactly one of jobs"]),
    ({"partition": "p"}, ["queue or partition"]),
    ({"gpu": 1}, ["unknown key(s) ['gpu']", "gpus"]),
    ({"job_extra_directives": ["#SBATCH --exclusive"]}, ["no #SBATCH"]),
    ({"env": {"A B": "1"}}, ["env", "NAME = value"]),
    ({"tls": {"ca_file": "x"}}, ["tls", "ca_file, cert and key"]),
])
def test_bad_cluster_tables_are_refused_naming_key_and_allowed(change, words):
    table = {k: v for k, v in {**BASE, **change}.items() if v is not None}
    with pytest.raises(dx.ClusterConfigError) as err:
        clf.parse_cluster(table, source="site.toml")
    for w in words:
        assert w in str(err.value), str(err.value)
    assert "site.toml" in str(err.value)


def test_bad_executor_options_refused_before_anything_starts(tmp_path):
    with pytest.raises(dx.ClusterConfigError, match="'cloud' is unknown; allowed: local, local-fresh, dask"):
        execute.make_executor("cloud", jobs=1)
    with pytest.raises(dx.ClusterConfigError, match="jobs must be an integer >= 1, got 0"):
        execute.make_executor("dask", jobs=0)
    with pytest.raises(dx.ClusterConfigError, match="need --executor dask"):
        execute.make_executor("local", jobs=1, scheduler="tcp://127.0.0.1:8786")
    with pytest.raises(dx.ClusterConfigError, match="'127.0.0.1:8786' is not a scheduler address"):
        execute.make_executor("dask", jobs=1, scheduler="127.0.0.1:8786")
    with pytest.raises(dx.ClusterConfigError, match="exclude each other"):
        execute.make_executor("dask", jobs=1, scheduler="tcp://127.0.0.1:8786", cluster_file=EXAMPLE)
    cpu = tmp_path / "cpu.toml"
    cpu.write_text(EXAMPLE.read_text().replace("gpus = 1", "gpus = 0"))
    with pytest.raises(dx.ClusterConfigError, match="asks for GPUs but \\[cluster\\] gpus = 0"):
        execute.make_executor("dask", jobs=1, cluster_file=cpu, gpus=1)
    with pytest.raises(dx.ClusterConfigError, match="needs TLS files"):
        execute.make_executor("dask", jobs=1, scheduler="tls://127.0.0.1:8786")


def test_a_run_on_a_worker_that_sees_another_store_is_refused(tmp_path):
    shared, other = tmp_path / "shared", tmp_path / "other"
    shared.mkdir(), other.mkdir()
    token = dx._ensure_token(shared)
    assert dx._ensure_token(shared) == token  # stable: later invocations agree
    spec = runs.RunSpec("train", "train.py", {"task": "t"})
    with pytest.raises(dx.StoreNotSharedError, match=f"does not see the run store {other}"):
        dx._run_on_worker(spec, str(other), token)
    assert not list(other.rglob("*"))  # nothing was started


@pytest.mark.slow
def test_refuses_workers_that_cannot_see_the_store_or_run_another_checkout(tmp_path, monkeypatch):
    # /proc/self/cwd/runs is one absolute path that names a different directory in each
    # process: a worker started elsewhere really sees another filesystem tree there,
    # just as a node that does not mount the client's store at the same path.
    seen, blind = tmp_path / "client_cwd", tmp_path / "elsewhere"
    seen.mkdir(), blind.mkdir()
    monkeypatch.chdir(blind)
    cluster = clf.local_cluster(jobs=1)
    monkeypatch.chdir(seen)
    cluster.scale(2)
    from distributed import Client

    client = Client(cluster)
    ex = dx.DaskExecutor(client, owned=(client, cluster))
    try:
        client.wait_for_workers(2, timeout=60)
        cwd = client.run(os.getcwd)
        (blind_worker,) = [a for a, d in cwd.items() if d == str(blind)]
        with pytest.raises(dx.StoreNotSharedError) as err:
            ex.check_store("/proc/self/cwd/runs")
        msg = str(err.value)
        assert "/proc/self/cwd/runs is not shared" in msg and "1 of 2 cannot see it" in msg
        assert blind_worker in msg and all(a in msg for a in cwd if a == blind_worker)
        (ok_worker,) = set(cwd) - {blind_worker}
        assert ok_worker not in msg
        assert not list((seen / "runs").glob(".probe-*"))  # the probe is cleaned up
        ex.check_store(seen / "runs")  # a real shared path passes

        # A worker started from another checkout, whose training notebook differs by a line,
        # is refused too: it would not run the source the run ids name.
        other = tmp_path / "other_checkout"
        shutil.copytree(ROOT / "cielib", other / "cielib", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(ROOT / "notebooks", other / "notebooks")
        with open(other / "notebooks" / "train.py", "a") as fh:
            fh.write("\n# edited on one node only\n")
        env = {**os.environ, "PYTHONPATH": ""}
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address,
             "--nthreads", "1", "--no-nanny", "--host", "127.0.0.1"],
            cwd=other, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            client.wait_for_workers(3, timeout=60)
            with pytest.raises(dx.SetupMismatchError) as err:
                ex.check_store(seen / "runs")
            msg = str(err.value)
            assert "1 of 3 Dask worker(s) run another checkout" in msg
            assert "cielib+notebooks sources" in msg and "numpy" not in msg, msg
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    finally:
        ex.shutdown()


@pytest.mark.slow
def test_dask_matches_local_bit_for_bit_and_a_killed_worker_is_retried_once(tmp_path):
    local_dir, dask_dir = tmp_path / "local" / "runs", tmp_path / "dask" / "runs"
    specs = _train_specs(tmp_path, dask_dir, seeds=(0, 1, 2))
    killed_once, fine, killed_twice = (s.run_id for s in specs)
    assert [s.run_id for s in _train_specs(tmp_path, local_dir, seeds=(0, 1))] == [killed_once, fine]

    local = execute.run_plan(specs[:2], runs_dir=local_dir, executor=execute.LocalExecutor(jobs=2))
    assert [r.status for r in local] == ["ran", "ran"], local

    lines: list[str] = []
    ex = execute.make_executor("dask", jobs=2, runs_dir=dask_dir, say=lines.append)
    killers = [_Killer(dask_dir / "train", killed_once, times=1),
               _Killer(dask_dir / "train", killed_twice, times=2)]
    for k in killers:
        k.start()
    try:
        assert ex.capacity == 2 and set(ex.client.nthreads().values()) == {1}
        assert len(ex.client.nthreads()) == 2
        assert "dashboard: http://127.0.0.1:" in lines[0], lines
        assert urllib.request.urlopen(ex.dashboard, timeout=30).status == 200
        # nobody else gets in: the scheduler, dashboard and workers listen on localhost only
        procs = [psutil.Process()] + [psutil.Process(p) for p in ex.client.run(os.getpid).values()]
        listening = {c.laddr.ip for p in procs for c in p.net_connections() if c.status == "LISTEN"}
        assert listening == {"127.0.0.1"}, listening
        out = execute.run_plan(specs, runs_dir=dask_dir, executor=ex)
    finally:
        for k in killers:
            k.stop.set()
        ex.shutdown()
    status = {r.run_id: r for r in out}
    assert [len(k.killed) for k in killers] == [1, 2], "an attempt was not caught running"
    # "cached": a finished run's task was lost with a worker killed later and recomputed,
    # and the recomputation found the run committed (the store's claim says so)
    assert {status[killed_once].status, status[fine].status} <= {"ran", "cached"}, out
    assert store.is_done(dask_dir / "train" / killed_once) and store.is_done(dask_dir / "train" / fine)
    # a worker died in both attempts: reported failed, no second retry, nothing marked done
    assert status[killed_twice].status == "failed" and "KilledWorker" in status[killed_twice].error
    assert not store.is_done(dask_dir / "train" / killed_twice)
    for rid in (killed_once, fine):
        a = runs.load_predictions(local_dir / "train" / rid)
        b = runs.load_predictions(dask_dir / "train" / rid)
        for key in ("y_true", "y_pred", "probs"):
            assert a[key].dtype == b[key].dtype and a[key].tobytes() == b[key].tobytes(), (rid, key)
    # killed attempts left only unmarked temporary directories, one per attempt
    left = sorted(p.name for p in (dask_dir / "train").glob(".tmp-*"))
    assert left == sorted(f".tmp-{rid}-{pid}" for k in killers for rid, pid in
                          ((k.run_id, pid) for pid in k.killed))
    assert not any((dask_dir / "train" / n / runs.DONE).exists() for n in left)
    assert sorted(p.parent.name for p in dask_dir.glob("train/*/DONE")) == sorted([killed_once, fine])


@pytest.mark.slow
def test_tls_scheduler_from_a_cluster_file(tmp_path):
    openssl = subprocess.run(["which", "openssl"], capture_output=True, text=True).stdout.strip()
    if not openssl:
        pytest.skip("openssl is not installed")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(tmp_path / "key.pem"),
                    "-out", str(tmp_path / "cert.pem")], check=True, capture_output=True)
    f = tmp_path / "tls.toml"
    f.write_text('[cluster]\nkind = "scheduler"\naddress = "tls://127.0.0.1:1"\n'
                 '[cluster.tls]\nca_file = "cert.pem"\ncert = "cert.pem"\nkey = "key.pem"\n')
    spec = clf.load_cluster_file(f)
    # a SLURM cluster file with the same table: the job script hands the workers the files
    slurm = tmp_path / "slurm-tls.toml"
    slurm.write_text(EXAMPLE.read_text().replace("# [cluster.tls]", "[cluster.tls]").replace(
        '# ca_file = "/shared/me/dask-tls/ca.pem"', 'ca_file = "cert.pem"').replace(
        '# cert = "/shared/me/dask-tls/dask.pem"', 'cert = "cert.pem"').replace(
        '# key = "/shared/me/dask-tls/dask.key"', 'key = "key.pem"'))
    sc = clf.slurm_cluster(clf.load_cluster_file(slurm))
    try:
        worker = sc.job_script().splitlines()[-1]
    finally:
        sc.close()
    assert " tls://" in worker and f"--tls-cert {tmp_path / 'cert.pem'}" in worker, worker
    assert f"--tls-key {tmp_path / 'key.pem'}" in worker and "--tls-ca-file" in worker
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, protocol="tls://", security=spec.tls.security())
    try:
        assert cluster.scheduler_address.startswith("tls://127.0.0.1:")
        ex = execute.make_executor("dask", jobs=1, scheduler=cluster.scheduler_address,
                              cluster_file=f, runs_dir=tmp_path / "runs", say=lambda s: None)
        try:
            assert ex.client.scheduler.address.startswith("tls://")
            assert ex.capacity == 1
        finally:
            ex.shutdown()
        # without certificates the same scheduler is not reachable
        from distributed import Client

        with pytest.raises((OSError, TimeoutError)):
            Client(cluster.scheduler_address.replace("tls://", "tcp://"), timeout="3s")
    finally:
        cluster.close()


@pytest.mark.slow
def test_gpu_runs_wait_for_the_gpu_worker_and_shutdown_cancels_them(tmp_path):
    """Two training runs, one GPU worker and one CPU worker: the first run starts on the GPU
    worker, the second waits for it (the CPU worker stays idle); shutdown (what run_all.py
    does on Ctrl-C) cancels both and leaves neither a finished-looking run nor a process."""

    runs_dir = tmp_path / "runs"
    first, second = _train_specs(tmp_path, runs_dir, gpus=1)
    assert first.resources == second.resources == {"GPU": 1}
    ex = execute.make_executor("dask", jobs=2, gpus=1, runs_dir=runs_dir, say=lambda s: None)
    try:
        info = ex.client.scheduler_info(n_workers=-1)["workers"]
        (gpu_worker,) = [a for a, w in info.items() if w["resources"].get("GPU")]
        env = ex.client.run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES"))
        assert env[gpu_worker] == "0" and sorted(env.values()) == ["", "0"]
        pids = ex.client.run(os.getpid)
        futs = [ex.submit(s, str(runs_dir)) for s in (first, second)]
        deadline = time.monotonic() + 120
        tree = [pids[gpu_worker]]
        while len(tree) == 1 and time.monotonic() < deadline:  # until the first run's kernel runs
            time.sleep(0.1)
            tree = [pids[gpu_worker]] + [p.pid for p in psutil.Process(pids[gpu_worker]).children(recursive=True)]
        assert len(tree) > 1, "the run's kernel did not start"
        assert list((runs_dir / "train").glob(f".tmp-{first.run_id}-{pids[gpu_worker]}"))
        (cpu_worker,) = set(pids) - {gpu_worker}
        assert not psutil.Process(pids[cpu_worker]).children()  # the CPU worker runs nothing
    finally:
        ex.shutdown()
    for fut in futs:
        with pytest.raises(cf.CancelledError):
            fut.result(timeout=30)
    assert not list(runs_dir.glob("*/*/DONE"))
    assert not list((runs_dir / "train").glob(f"*{second.run_id}*"))  # never started
    procs = [psutil.Process(p) for p in (*tree, *pids.values()) if psutil.pid_exists(p)]
    gone, alive = psutil.wait_procs(procs, timeout=15)
    assert not alive, [p.cmdline() for p in alive]  # no orphaned worker or kernel keeps running


def test_the_nannys_environment_is_undone_for_the_kernels(monkeypatch):
    """Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 (training ~2x slower here) and one
    BLAS thread; a worker removes them before a run starts its kernel, but keeps a value
    someone set differently."""
    import dask
    import distributed  # noqa: F401 (its configuration)

    nanny = dask.config.get("distributed.nanny.pre-spawn-environ")
    assert nanny.get("MALLOC_TRIM_THRESHOLD_") is not None, "Dask's default changed: re-check"
    for key, value in nanny.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.setenv("OMP_NUM_THREADS", "7")  # not the nanny's: someone chose it
    removed = dx.undo_nanny_environ()
    assert "MALLOC_TRIM_THRESHOLD_" in removed and "MALLOC_TRIM_THRESHOLD_" not in os.environ
    assert "OMP_NUM_THREADS" not in removed and os.environ["OMP_NUM_THREADS"] == "7"
    assert dx.undo_nanny_environ() == {}
