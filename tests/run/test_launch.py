"""Who started this process: torchrun's variables, SLURM's (srun without torchrun), or none."""

from __future__ import annotations

import pytest

from inception3.run.distributed import Launch, first_slurm_host, launch_from

SRUN = {
    "SLURM_PROCID": "5",
    "SLURM_STEP_NUM_TASKS": "8",
    "SLURM_LOCALID": "1",
    "SLURM_JOB_ID": "123456",
    "SLURM_STEP_NODELIST": "gpu[07-08]",
}


def test_srun_tasks_take_rank_size_and_the_first_node_from_slurm() -> None:
    assert launch_from(SRUN) == Launch("srun", 5, 8, 1, "tcp://gpu07:23456")
    override = launch_from(SRUN | {"MASTER_ADDR": "head", "MASTER_PORT": "29500"})
    assert override.init_method == "tcp://head:29500"


def test_torchrun_wins_inside_an_sbatch_script_and_nothing_is_one_process() -> None:
    torchrun = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "3"}
    assert launch_from(SRUN | torchrun) == Launch("torchrun", 3, 4, 3)
    assert launch_from({"SLURM_PROCID": "0", "SLURM_NTASKS": "8"}) == Launch("none")  # the batch script
    assert launch_from({}) == Launch("none")


@pytest.mark.parametrize(
    ("nodelist", "first"),
    [
        ("node[07-09,12],gpu1", "node07"),
        ("a1,b2", "a1"),
        ("localhost", "localhost"),
        ("rack2-n[3]", "rack2-n3"),
    ],
)
def test_the_first_host_of_a_node_list(nodelist: str, first: str) -> None:
    assert first_slurm_host(nodelist) == first
