"""Not code: this folder ships inside the wheel as dunning.defaults.locales (see pyproject.toml)."""
