"""The routes this plugin serves, for the diagnostics page and the README.

A test keeps this catalogue equal to the endpoint YAMLs declared in the group file.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    family: str
    summary: str


ROUTES: tuple[Route, ...] = (
    Route("GET", "/", "diagnostics", "This page: public URLs, setting checks and examples."),
)
