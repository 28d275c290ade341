"""Attribute blocks shared by the collection's modules."""

from __future__ import annotations


class ModuleDocFragment:
    # Modules that only read state: check mode returns the same result, there is never a diff.
    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    support: full
    description: Read-only; check mode returns the same facts.
  diff_mode:
    support: none
    description: Changes nothing, so there is nothing to show.
"""
