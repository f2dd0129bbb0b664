"""Write a small Minari dataset to try ``vlmreward relabel`` on: random-action episodes of VLM-RM's
CartPole (states only: relabel renders them by restoring each state), in the local Minari root
(``MINARI_DATASETS_PATH``, default ``~/.minari/datasets``). Needs ``pip install -e ".[relabel]"``.

    .venv/bin/python examples/make_minari_dataset.py vlmreward/cartpole-random-v0 --episodes 10
"""

import argparse

import gymnasium as gym
import minari

import vlmreward.envs  # noqa: F401  (registers vlmreward/VLMRM-CartPole-v0)
from vlmreward.relabel.minari_format import record_episode


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset_id")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--episode-length", type=int, default=50)
    args = parser.parse_args()
    env = gym.make("vlmreward/VLMRM-CartPole-v0", episode_length=args.episode_length)
    dataset = minari.create_dataset_from_buffers(
        args.dataset_id, [record_episode(env, seed) for seed in range(args.episodes)], env=env, algorithm_name="random",
        description="random actions on VLM-RM's CartPole (vlmreward example)", data_format="arrow",
    )
    print(f"wrote {args.dataset_id}: {dataset.total_episodes} episodes, {dataset.total_steps} steps")
