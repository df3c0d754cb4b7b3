"""navctl: rollouts, metrics, training, evaluation and the command line.

Wires `envs` (the PyBullet simulation) and `policies` (the controllers) together.
"""
__version__ = "0.1.0"
