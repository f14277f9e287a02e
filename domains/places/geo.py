"""Distances on the Earth: the one haversine every package uses."""

from __future__ import annotations

import math

import numpy as np

EARTH_KM = 6371.0088  # mean Earth radius


def haversine_km(
    lat1: np.ndarray | float, lon1: np.ndarray | float, lat2: np.ndarray | float, lon2: np.ndarray | float
) -> np.ndarray:
    """Great-circle distance in km, broadcast over arrays (NaN where a coordinate is NaN)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * EARTH_KM * np.arcsin(np.sqrt(np.clip(a, 0, 1))))


def km_between(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """``haversine_km`` for one pair, in plain floats: a request names a handful of places, where
    numpy's per-call overhead costs more than the arithmetic."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_KM * math.asin(math.sqrt(min(max(a, 0.0), 1.0)))
