"""FHIR R4 rendering of the canonical journal: pure functions from records to resource dicts.

:mod:`engine.fhir.resources` renders each clinical record kind, :mod:`engine.fhir.patient` the citizen,
:mod:`engine.fhir.refs` gives resource ids and references, :mod:`engine.fhir.codes` code system URIs.
The read side (``enjournal serve``) serves what these return; the tests validate every rendering with
``fhir.resources`` (R4B models), off the request path.
"""
