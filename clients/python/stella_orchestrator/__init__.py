"""Stella Orchestrator Python client: the ``stella orchestrator`` CLI (and, later, the worker
SDK). Depends on the generated protobuf code and transport libraries only; server-side
commands (``migrate``, ``tenants``, ``token``) are plugged in through the
``stella_orchestrator.commands`` entry point group by the packages that own them.
"""
