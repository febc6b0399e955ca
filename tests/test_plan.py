"""The execution plan: what the configuration fixes is kept, the rest is measured once per machine and shapes."""

import pytest
import torch

from losslab.data import load_dataset
from losslab.train import Member, TrainConfig, train_population
from losslab.train import plan as plans


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSLAB_CACHE_DIR", str(tmp_path / "cache"))


def choose(config, time_plan, steps=10_000, members=64):
    return plans.choose_plan(config, members, 400_000, True, ("torch", "numpy"), steps, {"model": "mlp"}, time_plan)


def test_the_fastest_candidate_wins_and_is_cached(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    timed = []

    def fake_time(candidate, warmup, steps):
        timed.append((candidate, steps))
        # numpy twice as fast; one-thread blocks on four workers beat one four-thread block
        per_step = (1.0 if candidate.matmul == "torch" else 0.5) * (1.0 if candidate.threads_per_block == 1 else 3.0)
        members = sum(b.stop - b.start for b in candidate.blocks(64)[: candidate.workers])
        return per_step * steps * members / 1000

    chosen, timings = choose(TrainConfig(), fake_time)
    assert (chosen.matmul, chosen.threads_per_block, chosen.workers, chosen.source) == ("numpy", 1, 4, "measured")
    # Each candidate measured twice (the better time kept), after a short screen for all but the first; one block
    # of four torch threads, 6x slower than the best at its screen, is dropped there.
    full = [c for c, steps in timed if steps == plans.PROBE_STEPS]
    assert len(full) == 6 and len(timed) == 9 and len(timings) == 4
    assert not any(c.matmul == "torch" and c.threads_per_block == 4 for c in full)
    again, _ = choose(TrainConfig(), fake_time)
    assert again.source == "cached" and again.same_arithmetic(chosen) and len(timed) == 9  # not measured again


def test_a_far_slower_candidate_is_dropped_after_a_short_screen(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    calls = []

    def one_pathological(candidate, warmup, steps):  # numpy on two threads: 50x slower
        calls.append((candidate, steps))
        members = sum(b.stop - b.start for b in candidate.blocks(64)[: candidate.workers])
        slow = 50.0 if (candidate.matmul, candidate.threads_per_block) == ("numpy", 2) else 1.0
        return steps * members / 1000 * slow

    chosen, timings = choose(TrainConfig(), one_pathological)
    assert (chosen.matmul, chosen.threads_per_block) == ("torch", 1) and len(timings) == 4
    slow = [steps for c, steps in calls if (c.matmul, c.threads_per_block) == ("numpy", 2)]
    assert slow == [plans.PROBE_SCREEN_STEPS]  # one short look, never the full measurement


def test_noise_alone_never_moves_a_run_off_the_default(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)

    def nearly_equal(candidate, warmup, steps):  # numpy 10% faster: within the margin, so the default stays
        members = sum(b.stop - b.start for b in candidate.blocks(64)[: candidate.workers])
        return steps * members / 1000 * (0.9 if candidate.matmul == "numpy" else 1.0)

    chosen, _ = choose(TrainConfig(), nearly_equal)
    assert (chosen.matmul, chosen.threads_per_block) == ("torch", 1)


def test_fixed_settings_are_kept_and_short_runs_are_not_measured(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)

    def never(*args):
        raise AssertionError("measured")

    fixed, _ = choose(TrainConfig(block_size=5, threads_per_block=1, workers=2, matmul="numpy"), never)
    assert (fixed.block_size, fixed.workers, fixed.matmul, fixed.source) == (5, 2, "numpy", "given")
    short, timings = choose(TrainConfig(), never, steps=50)
    assert short.source == "default" and short.matmul == "torch" and timings == []

    seen = []
    choose(TrainConfig(matmul="torch"), lambda c, w, s: seen.append(c) or 1.0)
    assert {c.matmul for c in seen} == {"torch"} and {c.threads_per_block for c in seen} == {1, 2}


def test_a_run_records_its_plan_and_a_rerun_with_that_plan_repeats_it_exactly():
    data = load_dataset("digits")
    members = [Member("cross_entropy", seed=s, lr=0.05) for s in range(3)] + [Member("mse", seed=0, lr=0.5)]
    first = train_population(data, members, TrainConfig(hidden=[16], epochs=1), progress=False)
    p = first.plan
    again = train_population(
        data,
        members,
        TrainConfig(
            hidden=[16], epochs=1, block_size=p.block_size, threads_per_block=p.threads_per_block, matmul=p.matmul
        ),
        progress=False,
    )
    for a, b in zip(first.model.params, again.model.params):
        assert torch.equal(a, b)


def test_plan_population_gives_the_plan_training_uses_and_fixing_it_repeats_every_bit():
    from losslab.train.population import plan_population

    data = load_dataset("digits")
    members = [Member("cross_entropy", seed=s, lr=0.05) for s in range(5)] + [Member("mse", seed=0, lr=0.5)]
    config = TrainConfig(hidden=[16], epochs=1)
    plan, _ = plan_population(data, members, config)
    trained = train_population(data, members, config, progress=False)
    assert trained.plan.same_arithmetic(plan)
    fixed = train_population(data, members, TrainConfig(hidden=[16], epochs=1, **plan.fixed_fields()), progress=False)
    assert fixed.plan.source == "given" and fixed.plan.same_arithmetic(plan)
    for a, b in zip(trained.model.params, fixed.model.params):
        assert torch.equal(a, b)


def test_a_cell_planned_for_ray_fits_the_cpus_each_task_gets(tmp_path):
    """On Ray the driver plans each cell for a task of --cpus-per-cell CPUs: a plan the cluster's tasks could not
    hold (two threads per block on one-CPU tasks) would wait in Ray's queue or be refused."""
    from losslab.experiments.runner import plan_cell
    from losslab.experiments.spec import load_spec

    spec = tmp_path / "s.toml"
    spec.write_text(
        'name = "s"\n[train]\nepochs = 30\nhidden = [64]\n[[grid]]\nlabel = "a"\ndataset = "digits"\n'
        'losses = ["cross_entropy", "mse"]\nlrs = [0.1, 0.3]\nseeds = 16\n'
    )
    (cell,) = load_spec(spec).cells()
    data = load_dataset("digits")
    planned = plan_cell(cell, data, max_threads=1)
    assert planned.plans["main"]["threads_per_block"] == 1
    pinned = plan_cell(cell, data, max_threads=1, recorded={"main": {**planned.plans["main"], "threads_per_block": 2}})
    assert pinned.plans["main"]["threads_per_block"] == 1  # a recorded plan too is fitted to the task
