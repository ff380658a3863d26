"""Where things are: coordinates, distances, and turning an address into coordinates.

``distance``: :class:`GeoPoint`, the great-circle distance (:func:`haversine_km`) behind the
:class:`DistanceModel` protocol, and the bounding box a radius query starts from.
``geocoding``: the :class:`Geocoder` protocol and the offline default, :class:`CentroidGeocoder`
(a bundled table of district centres).
"""

from callcenter.geo.distance import (
    GREAT_CIRCLE,
    DistanceModel,
    GeoPoint,
    GreatCircle,
    bounding_box,
    haversine_km,
)
from callcenter.geo.geocoding import (
    CentroidGeocoder,
    Geocoder,
    default_geocoder,
    locate,
    place_key,
)

__all__ = [
    "GREAT_CIRCLE", "CentroidGeocoder", "DistanceModel", "GeoPoint", "Geocoder", "GreatCircle",
    "bounding_box", "default_geocoder", "haversine_km", "locate", "place_key",
]
