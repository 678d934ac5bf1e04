"""Which KITH / e-helse message family a document is: one table for the KITH file adapter and the mapping.

A family is named by a marker its payload namespace contains and, for the mapping, the root element it
maps (``None``: any root of the namespace):

==================  ================  ==================  =========================================================
family              namespace holds   root (mapping)      versions
==================  ================  ==================  =========================================================
``apprec``          ``/apprec/``      ``AppRec``          AppRec 1.0, 1.1: a receipt, never clinical
``svarrapport``     ``/labsvar/``     ``Message``         Svarrapport 1.2-1.4
``epikrise``        ``/epikrise``     ``Message``         Epikrise 1.0-1.2
``henvisning``      ``/henvisning/``  any                 Henvisning 1.0, 1.1; 2.0 (``Henvisning``, on ehelse.no)
``dialogmelding``   ``/dialog/``      ``Dialogmelding``   Dialogmelding 1.0, 1.1
``plo``             ``/po/``          any                 PLO 1.5, 1.6, 2.0 (kith.no and ehelse.no)
``rekvisisjon``     ``/rekvisisjon/`` ``Message``         Rekvisisjon 1.5, 1.6
==================  ================  ==================  =========================================================

Two questions are asked of it:

* :func:`family_of` (the adapter: is this a message we take, and is it a receipt?): the first family whose
  marker the namespace holds; a root element named ``AppRec`` is a receipt in any namespace. The root does
  not decide otherwise: a document the mapping then refuses is still taken and dead-lettered with the
  mapping's reason code.
* :func:`mapped_family` (the mapping: which module maps this payload?): the same, and the root must be
  the one the family maps; a receipt is returned as :data:`APPREC`, which the mapping refuses.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    """One message family: its name (the mapping module's too), its namespace marker and mapped root."""

    name: str
    marker: str
    root: str | None = None  # the payload root element the mapping maps; None: any
    clinical: bool = True

    def maps(self, root: str) -> bool:
        """Whether the family's mapping takes a payload with this root element."""
        return self.root is None or self.root == root


APPREC = Family("apprec", "/apprec/", "AppRec", clinical=False)
#: the clinical families, in the order their markers are tried
CLINICAL: tuple[Family, ...] = (
    Family("svarrapport", "/labsvar/", "Message"),
    Family("epikrise", "/epikrise", "Message"),
    Family("henvisning", "/henvisning/"),
    Family("dialogmelding", "/dialog/", "Dialogmelding"),
    Family("plo", "/po/"),
    Family("rekvisisjon", "/rekvisisjon/", "Message"),
)
FAMILIES: tuple[Family, ...] = (APPREC, *CLINICAL)


def _receipt(namespace: str, root: str | None) -> bool:
    return APPREC.marker in namespace or (root is not None and root == APPREC.root)


def family_of(namespace: str | None, root: str | None = None) -> Family | None:
    """The family of a document in ``namespace`` whose root element is ``root`` (None: not known)."""
    ns = namespace or ""
    if _receipt(ns, root):
        return APPREC
    return next((f for f in CLINICAL if f.marker in ns), None)


def mapped_family(namespace: str | None, root: str) -> Family | None:
    """The family whose mapping takes this payload (:data:`APPREC` for a receipt; None: no mapping)."""
    ns = namespace or ""
    if _receipt(ns, root):
        return APPREC
    return next((f for f in CLINICAL if f.marker in ns and f.maps(root)), None)


__all__ = ["APPREC", "CLINICAL", "FAMILIES", "Family", "family_of", "mapped_family"]
