"""What a run works with, built in one place (the composition root): the settings and the clients'
contracts, and through them the store (`settings.store`) and the SFTP connector (`settings.sftp`).

A flow builds it once per run (`from_environment`) and hands it to its tasks; the plain functions
take its parts, so tests hand in objects, not environment variables.
"""

from __future__ import annotations

from schemas.contract import Contract, cached_contracts
from tasks.settings import Settings, load_settings


class Resources:
    """The settings and contracts of one run. A plain class on purpose: Prefect walks a dataclass task
    argument field by field (looking for futures), and this one holds every client's contract."""

    __slots__ = ("contracts", "settings")

    def __init__(self, settings: Settings, contracts: dict[str, Contract]) -> None:
        self.settings = settings
        self.contracts = contracts

    def contract(self, client: str) -> Contract:
        """A client's contract (ValueError naming the known clients for an unknown one)."""
        if client not in self.contracts:
            raise ValueError(f"unknown client {client!r}; contracts: {', '.join(sorted(self.contracts)) or 'none'}")
        return self.contracts[client]


def from_environment() -> Resources:
    """The settings from the environment and the contracts of its clients folder (parsed once per change)."""
    settings = load_settings()
    return Resources(settings, cached_contracts(settings.clients_dir, settings.home))
