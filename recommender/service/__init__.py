"""The resident scoring service: champions and the year's candidates kept in memory between lists.

A ``recommender score`` run pays, every time, for starting Python, loading pandas, LightGBM and
MLflow, finding and downloading the champion and building the year's candidates and features:
about 5 s on 2 cores before the first row, and 25-30 s when eight analysts do it at once. The
service (``recommender scoring-service``, :mod:`~recommender.service.app`) pays that once per
model, year and bank snapshot; ``recommender score --service URL`` (:mod:`~recommender.service.client`,
which imports neither pandas nor MLflow) sends the list and writes the scored file it gets back.

Each request is the analyst's own: the service forwards the analyst's credentials to the tracking
server for every MLflow call it makes on the request's behalf (finding the champion: READ on the
model; recording the scoring run: EDIT on the scoring experiment), and holds none of its own.
"""

SERVICE_ENV = "RECOMMENDER_SCORING_SERVICE"
"""The service's URL for ``recommender score`` (the same as ``--service``)."""
DEFAULT_PORT = 5100
HEADER_PREFIX = "X-Recommender-"
