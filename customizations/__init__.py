"""Sample consultant customizations, one package per directory, each with its
``customization.toml``. Tailor loads them from here (and from
TAILOR_CUSTOMIZATIONS_PATH and the ``tailor.customizations`` entry points)."""
