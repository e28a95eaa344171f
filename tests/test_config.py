"""Profiles: the shipped ones load; every malformed value is refused with its name."""

from __future__ import annotations

import pytest

from cielib import config
from cielib.config import ConfigError, parse_profile


def base() -> dict:
    return {
        "profile": {"name": "t", "sparsities": [0.0, 0.5], "seeds": [0, 1], "techniques": ["float16"]},
        "tasks": {
            "a": {"dataset": "digits", "model": "vgg_small", "optimizer": "sgd",
                  "learning_rate": 0.1, "epochs": 1, "batch_size": 8}
        },
    }


def test_shipped_profiles_load():
    assert {"quick", "paper"} <= set(config.available_profiles())
    quick = config.load_profile("quick")
    assert quick.sparsities == (0.0, 0.3, 0.5, 0.7, 0.9)
    assert len(quick.seeds) >= 3
    assert all(t.stand_in_for for t in quick.tasks), "quick tasks must be labelled as stand-ins"
    paper = config.load_profile("paper")
    assert {(t.model, t.dataset, t.optimizer, t.epochs) for t in paper.tasks} == {
        ("vgg19", "cifar10", "sgd", 50), ("resnet50", "cifar100", "adam", 15)}
    assert paper.sparsities == quick.sparsities


def test_parse_valid():
    prof = parse_profile(base())
    assert prof.task("a").learning_rate == 0.1
    assert prof.task("a").train_params()["model"] == "vgg_small"


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda d: d["profile"].update(sparsities=[0.0, 1.0]), "1.0"),
        (lambda d: d["profile"].update(sparsities=[-0.1]), "-0.1"),
        (lambda d: d["profile"].update(sparsities=[0.5, 0.5]), "duplicate"),
        (lambda d: d["profile"].update(seeds=[1, 1]), "duplicate seed"),
        (lambda d: d["profile"].update(seeds=[-1]), "-1"),
        (lambda d: d["profile"].update(techniques=["int4"]), "int4"),
        (lambda d: d["profile"].update(colour="red"), "colour"),
        (lambda d: d["tasks"]["a"].update(model="vgg99"), "vgg99"),
        (lambda d: d["tasks"]["a"].update(dataset="mnist"), "mnist"),
        (lambda d: d["tasks"]["a"].update(optimizer="rmsprop"), "rmsprop"),
        (lambda d: d["tasks"]["a"].update(epochs=0), "epochs"),
        (lambda d: d["tasks"]["a"].update(epochs=True), "epochs"),
        (lambda d: d["tasks"]["a"].update(batch_size=0), "batch_size"),
        (lambda d: d["tasks"]["a"].update(learning_rate=-1), "learning_rate"),
        (lambda d: d["tasks"]["a"].update(validation_fraction=1.0), "validation_fraction"),
        (lambda d: d["tasks"]["a"].update(lr=0.1), "'lr'"),
        (lambda d: d["tasks"]["a"].pop("model"), "missing"),
        (lambda d: d.pop("tasks"), "tasks"),
    ],
)
def test_bad_values_are_named(mutate, needle):
    d = base()
    mutate(d)
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(")):
        parse_profile(d)


def test_malformed_toml_and_unknown_profile(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[profile\nname = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load_profile(bad)
    with pytest.raises(ConfigError, match="unknown profile 'nope'.*quick"):
        config.load_profile("nope")


def test_unknown_task_lists_allowed():
    with pytest.raises(ConfigError, match="unknown task 'b'.*allowed: a"):
        parse_profile(base()).task("b")


def test_name_lists_match_registries():
    """config keeps TF-free copies of the registry names; they must not drift."""
    from cielib import data, models

    # one list per name: the profile is checked against the registries themselves
    assert config.MODELS is models.MODELS and config.DATASETS is data.DATASETS


@pytest.mark.parametrize(
    "key, value, needle",
    [
        ("prune_schedule", "cosine", "unknown prune_schedule 'cosine'"),
        ("prune_from", "nowhere", "unknown prune_from 'nowhere'"),
        ("prune_layers", "some", "unknown prune_layers 'some'"),
        ("prune_epochs", -1, "prune_epochs must be >= 0"),
        ("prune_frequency", -5, "prune_frequency must be >= 0"),
        ("prune_ramp_fraction", 0.0, "prune_ramp_fraction must be in (0, 1]"),
    ],
)
def test_bad_pruning_values(key, value, needle):
    d = base()
    d["tasks"]["a"][key] = value
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace("]", r"\]")):
        parse_profile(d)


def test_pruning_values_parse():
    d = base()
    d["tasks"]["a"].update(prune_from="baseline", prune_epochs=2, prune_schedule="constant")
    t = parse_profile(d).task("a")
    assert t.prune_params()["prune_from"] == "baseline" and t.prune_epochs == 2


def test_onednn_is_one_choice_for_every_profile():
    """Every shipped profile's training and features parameters record oneDNN on, and
    a task that tries to choose otherwise is refused (one kernel choice, in one place)."""
    from cielib import stages
    from cielib.keras import ONEDNN

    assert ONEDNN is True
    for name in config.available_profiles():
        if name.startswith("cluster"):
            continue
        prof = config.load_profile(name)
        for task in prof.tasks:
            assert task.train_params()["onednn"] is True, (name, task.name)
            assert stages._features_params(prof, task, {"seed": 0})["onednn"] is True
    d = base()
    d["tasks"]["a"]["onednn"] = False
    with pytest.raises(ConfigError, match="onednn"):
        parse_profile(d)


def test_compressed_seeds_default_to_an_offset_and_must_be_disjoint():
    prof = parse_profile(base())
    assert prof.independent_seeds() == (1000, 1001)
    task = prof.task("a")
    assert prof.seeds_for(task, 0.0) == (0, 1) and prof.seeds_for(task, 0.5) == (1000, 1001)
    import dataclasses
    assert prof.seeds_for(dataclasses.replace(task, prune_from="baseline"), 0.5) == (0, 1)
    d = base()
    d["profile"]["compressed_seeds"] = [5, 1]
    with pytest.raises(ConfigError, match=r"compressed_seeds.*disjoint.*shared: \[1\]"):
        parse_profile(d)
    d["profile"]["compressed_seeds"] = [5, 6, 7]
    assert parse_profile(d).independent_seeds() == (5, 6, 7)
    d = base()
    d["profile"]["compressed_seed_offset"] = 1
    with pytest.raises(ConfigError, match=r"offset \(1\).*shared: \[1\]"):
        parse_profile(d)


def test_only_profiles_are_listed_as_profiles():
    """Cluster files live in configs/clusters/, so `--profile nope` lists profiles only,
    and every listed name loads as a profile."""
    names = config.available_profiles()
    assert "quick" in names and not [n for n in names if "cluster" in n]
    for name in names:
        config.load_profile(name)
    with pytest.raises(config.ConfigError, match="unknown profile 'nope'; allowed: ") as err:
        config.load_profile("nope")
    assert "cluster" not in str(err.value)
