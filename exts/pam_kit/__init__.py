"""PAM Engine's Kit UI module: the PAM window and the Replicator writer. This package is the only
code of the project that imports ``omni.*``; everything it calls lives in ``pam_engine``
(``pam_engine.kitless``) and is tested on CPU. Kit imports it through ``[[python.module]]`` in
the repository's ``extension.toml`` and instantiates ``PamKitExtension``."""

from .extension import PamKitExtension  # noqa: F401  (Kit finds omni.ext.IExt subclasses here)
