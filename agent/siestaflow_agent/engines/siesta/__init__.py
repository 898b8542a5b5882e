"""SIESTA, TranSIESTA and TBtrans support: input writing, output parsing, validation.

Modules: :mod:`.stdout` (streaming stdout parser), :mod:`.tbtrans` (TBtrans stdout and ASCII
transmission files), :mod:`.files` (small auxiliary files), :mod:`.validate`, :mod:`.extract`,
:mod:`.fdf` (input text), :mod:`.layout` (file names and invocations), :mod:`.engine`.
"""

from .engine import SiestaEngine, TbtransEngine

__all__ = ["SiestaEngine", "TbtransEngine"]
