"""The read side: a FHIR R4 API over the journal store (``enjournal serve``).

:mod:`engine.api.app` builds the ASGI app, :mod:`engine.api.fhir` holds the routes, :mod:`engine.api.reader`
the store queries as resources, :mod:`engine.api.search` the search parameters, :mod:`engine.api.guard` the
seam to authentication, access control and the audit log, :mod:`engine.api.errors` the OperationOutcomes.
"""
