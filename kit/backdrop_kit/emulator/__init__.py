"""A Claid AI Background emulator: a real HTTP server that speaks the contract in shared/, for offline work."""

from backdrop_kit.emulator.server import CallRecord, ClaidEmulator, EmulatorConfig

__all__ = ["CallRecord", "ClaidEmulator", "EmulatorConfig"]
