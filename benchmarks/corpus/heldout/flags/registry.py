"""Flag defaults, changed at runtime by the admin API."""

REGISTRY: dict[str, bool] = {"checkout_v2": False, "dark_mode": False, "beta_banner": False}
