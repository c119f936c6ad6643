"""Which optional parts of the API this process serves, from its environment.

- ``MEAA_UI=1``: the try-it page at ``/`` (``make serve`` sets it; the template's ``EnableTryItPage``).
- the results routes (``/subjects/{subject}/moods``, ``/objects/{key}``) expose health data, so they
  exist only behind the JWT authorizer (``MEAA_AUTH_MODE=jwt``, from the template's ``AuthMode``) or
  when serving on one's own machine (``MEAA_LOCAL=1``, set by ``make serve``). Anything else: 404.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from meaa.config import env_flag

@dataclass(frozen=True)
class ApiFeatures:
    try_it_page: bool = False
    results_routes: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "ApiFeatures":
        authenticated = environ.get("MEAA_AUTH_MODE", "").strip().lower() == "jwt"
        return cls(
            try_it_page=env_flag("MEAA_UI", environ=environ),
            results_routes=authenticated or env_flag("MEAA_LOCAL", environ=environ),
        )
