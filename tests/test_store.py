"""The run store's guarantees: claims, safe --force, integrity, unwritable stores, the index."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cielib import execute, notebook_source, pipeline, runs, store


def _finished(runs_dir, params, files=None):
    spec = runs.RunSpec("train", "train.py", params)
    tmp = store.make_tmp_dir(runs_dir, "train", spec.run_id)
    runs.write_json(tmp / runs.PARAMS, spec.identity())
    for name, text in (files or {"metrics.json": '{"top1": 0.5}'}).items():
        (tmp / name).write_text(text)
    return spec, store.commit(tmp, runs.run_path(runs_dir, "train", spec.run_id))


# --- integrity ------------------------------------------------------------------------


def test_truncated_output_is_damage_and_is_listed_by_verify(tmp_path):
    spec, final = _finished(tmp_path, {"task": "a", "seed": 0},
                            {"metrics.json": "{}", "predictions.npz": "x" * 100})
    assert store.is_done(final) and store.verify(tmp_path) == {}
    with open(final / "predictions.npz", "r+") as fh:
        fh.truncate(10)
    assert not store.is_done(final)
    assert store.verify(tmp_path) == {str(final): ["size changed: predictions.npz (100 -> 10 bytes)"]}
    assert store.why_rerun(spec, tmp_path).startswith("outputs changed: size changed: predictions.npz")
    (final / "predictions.npz").unlink()
    assert store.problems(final) == ["missing: predictions.npz"]


def test_verify_lists_incomplete_runs_and_dead_leftovers(tmp_path):
    (tmp_path / "train" / "0123456789ab").mkdir(parents=True)
    (tmp_path / "train" / ".tmp-0123456789ab-999999999").mkdir()
    bad = store.verify(tmp_path)
    assert bad[str(tmp_path / "train" / "0123456789ab")] == ["incomplete: no DONE marker"]
    assert "process is gone" in bad[str(tmp_path / "train" / ".tmp-0123456789ab-999999999")][0]


# --- claims ---------------------------------------------------------------------------


def test_a_claim_is_exclusive_and_released(tmp_path):
    c = store.try_claim(tmp_path, "train", "abc")
    assert c is not None and store.claim_owner(c.path)["pid"] == os.getpid()
    assert store.try_claim(tmp_path, "train", "abc") is None  # held by a live owner
    c.release()
    again = store.try_claim(tmp_path, "train", "abc")
    assert again is not None
    again.release()


def test_a_dead_owners_claim_is_taken_over(tmp_path):
    path = tmp_path / "train" / ".claim-abc"
    path.parent.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    path.write_text(json.dumps({"host": store._HOST, "pid": int(dead), "started": 1.0}))
    assert store.claim_is_stale(path)
    c = store.try_claim(tmp_path, "train", "abc")
    assert c is not None and store.claim_owner(c.path)["pid"] == os.getpid()
    c.release()


def test_a_silent_owner_on_another_host_goes_stale(tmp_path):
    path = tmp_path / "train" / ".claim-abc"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "started": 1.0}))
    assert not store.claim_is_stale(path)
    old = path.stat().st_mtime - store.STALE_AFTER_S - 5
    os.utime(path, (old, old))
    assert store.claim_is_stale(path)


def test_waiting_for_a_run_another_process_finishes(tmp_path):
    spec = runs.RunSpec("train", "train.py", {"task": "w"})
    holder = store.try_claim(tmp_path, "train", spec.run_id)

    def finish_later():
        import time

        time.sleep(0.5)
        tmp = store.make_tmp_dir(tmp_path, "train", spec.run_id)
        (tmp / "x").write_text("1")
        store.commit(tmp, runs.run_path(tmp_path, "train", spec.run_id))
        holder.release()

    import threading

    t = threading.Thread(target=finish_later)
    t.start()
    assert store.wait_for_claim(tmp_path, "train", spec.run_id, poll_s=0.05, timeout_s=30) is None
    t.join()


# --- --force --------------------------------------------------------------------------


def test_a_failed_forced_rerun_keeps_the_old_run(tmp_path, monkeypatch):
    spec, final = _finished(tmp_path, {"task": "f", "seed": 0}, {"metrics.json": '{"top1": 0.9}'})
    before = (final / runs.DONE).read_text()

    def boom(*a, **k):
        raise RuntimeError("the notebook failed")

    monkeypatch.setattr(notebook_source, "execute", boom)
    monkeypatch.setattr(notebook_source, "notebook_path", lambda name: tmp_path / "nb.py")
    import dataclasses

    res = execute.run_spec(dataclasses.replace(spec, force=True), str(tmp_path))
    assert res.status == "failed" and "the notebook failed" in res.error
    assert (final / runs.DONE).read_text() == before and store.is_done(final)
    assert runs.read_json(final / "metrics.json") == {"top1": 0.9}
    assert (tmp_path / "train" / f"failed-{spec.run_id}").is_dir()
    assert not list((tmp_path / "train").glob(".claim-*"))  # the claim was released


# --- the store as a whole -------------------------------------------------------------


def test_an_unwritable_store_is_refused(tmp_path):
    (tmp_path / "runs").write_text("a file where the store should be")
    with pytest.raises(store.StoreError, match="cannot be written"):
        store.check_writable(tmp_path / "runs")


def test_a_full_disk_is_refused(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(store.StoreError, match="MiB free"):
        store.check_writable(tmp_path / "runs")


def test_run_all_refuses_an_unwritable_store_before_any_work(tiny_profile, project, capsys):
    (project / "runs").write_text("not a directory")
    code = pipeline.main(pipeline.Options(profile=str(tiny_profile)))
    assert code == 2
    err = capsys.readouterr().err
    assert "cannot be written" in err and "nothing was run" in err
    assert sorted(p.name for p in project.iterdir()) == ["runs"]


WRITER = """
import sys
from pathlib import Path
from cielib import runs, store
runs_dir, who = Path(sys.argv[1]), sys.argv[2]
for i in range(15):
    spec = runs.RunSpec("train", "train.py", {"task": who, "seed": i})
    tmp = store.make_tmp_dir(runs_dir, "train", spec.run_id)
    runs.write_json(tmp / runs.PARAMS, spec.identity())
    (tmp / "metrics.json").write_text('{"top1": 0.5}')
    store.commit(tmp, runs.run_path(runs_dir, "train", spec.run_id))
    store.write_index(runs_dir)
"""


def test_several_index_writers(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), f"w{k}"]) for k in range(4)]
    assert [p.wait(timeout=300) for p in procs] == [0] * 4
    index = runs.load_index(tmp_path)  # the last writer saw every run finished before it
    assert len(index) == 4 * 15 and index["run_id"].is_unique
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(f".{runs.INDEX}.")]
    assert leftovers == []
