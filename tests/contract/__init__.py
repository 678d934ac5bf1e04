"""The conformance suite: every registered adapter kind and mapping passes the same tests.

The tests are parametrised over the registries (``tests/contract/conftest.py`` is the one place that asks
them), so a plugin registered later, built in or through an entry point, gets all of them without an edit
here. A plugin the suite cannot drive fails with a message saying what to add; it is never skipped.

What a mapping gets (``test_mappings.py``, ``test_redelivery.py``); its good samples are its fixture pairs:

* each good sample maps to its expected file and reaches the journal through the real worker, archived and
  not dead-lettered;
* bad input (empty bytes, 512 random bytes, a good sample cut in half, a good sample with a 0x00 byte in its
  middle) is a :class:`engine.errors.PermanentError` with a stable reason code (UPPER_SNAKE_CASE, not a
  catch-all), and through the worker archived and dead-lettered with that code, nothing lost. A damaged
  sample may instead be dead-lettered by the worker (text the journal cannot hold) or mapped with a warning
  the intact sample does not give. Never another exception type, never an empty result without a dead letter;
* purity: each good sample mapped twice, and all of them in either order, gives the same records and hashes;
* redelivery changes nothing: the same envelopes published again, and delivered again by the bus after a
  commit whose acks were lost, leave every journal table as it was (embedded bus + SQLite, RabbitMQ +
  PostgreSQL);
* no national identity number or name of its samples in any log line captured while mapping and storing,
  in a dead letter's reason or in an error message.

What an adapter kind gets (``test_adapters.py``), driven with a sample of the mapping its Settings name by
default (the first fixture pair carrying a national identity number) and the four bad inputs made from it,
delivered the way its senders deliver them, through the engine's runtime built from a config:

* ``check()`` on a config whose directories do not exist writes nothing (it may refuse the config);
* nothing lost: every input answered and accounted for, every archived envelope from an input, a clean stop;
* the good sample next to the bad ones is accepted and its records are in the journal;
* each bad input is archived and dead-lettered with a stable reason code; what the adapter refuses itself
  carries the same code on its dead letter, and the sender is told it (NAK, AppRec, error folder, ``.reason``
  file). A mapping's dead letter after the sender's answer is for the operator (``enjournal dead-letters``);
* no national identity number or name of the sample, and none of the (personal) file names, in any log line.

A new mapping provides one sample pair in ``tests/fixtures/<mapping>/``: an input file and its
``<stem>.expected.json``, written by ``ENJOURNAL_REGEN=1 pytest tests/unit`` and reviewed (a
``pairs.yaml`` there gives the MapContext, or inputs kept elsewhere with the adapter config they are mapped
with: :mod:`tests.fixture_pairs`). One of its samples should carry a (synthetic) national identity number.

A new adapter kind provides a default ``mapping`` in its Settings whose fixture pairs it can carry. An
adapter polling a ``directory`` needs nothing more (its files are dropped in the inbox; it names each
envelope's file in the ``file`` attribute and moves each file to ``archive/`` or its error folder); if its
Settings need more than the sample's adapter config and directories, that config goes in the mapping's
``pairs.yaml``. A new kind of transport adds one driver to ``DRIVERS`` in ``tests/contract/drivers.py``: its
config section, how an input is delivered, and what the sender was told.

Tests that fail today for a defect outside the suite are listed in ``KNOWN_DEFECTS`` (conftest) with the
reason, and marked ``xfail(strict=True)``: the day the defect is fixed, the entry must go.
"""
