"""Reinforcement learning with VLM rewards on stable-baselines3: deferred scoring, configs, training."""
