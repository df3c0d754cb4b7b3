"""navctl's simulation: PyBullet Gymnasium environments on changing terrain.

`import envs` registers `navctl/TerrainNav-v0`. Only gymnasium, pybullet and numpy are used
here; nothing in this package knows of torch or of any policy.
"""
import gymnasium

ENV_ID = "navctl/TerrainNav-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="envs.terrain_nav:TerrainNavEnv")

__all__ = ["ENV_ID"]
