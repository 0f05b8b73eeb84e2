"""Registers stylegan_v's structured configs in any process that composes ``conf/`` through Hydra.

Hydra imports every module under the ``hydra_plugins`` namespace when it discovers plugins; DVC's Hydra
support (``dvc exp run -S …`` composes ``conf/pipeline.yaml`` into ``params.yaml``) puts the repository root
on that search path, so the schemas our YAML options extend (``base_training``, ``root_schema``, …) exist there
too. Our own entry points register them explicitly as well; registering twice is harmless.
"""

from stylegan_v.configs import register_configs

register_configs()
