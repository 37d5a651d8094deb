"""Not code: this folder ships inside the wheel as dunning.defaults.templates (see pyproject.toml)."""
