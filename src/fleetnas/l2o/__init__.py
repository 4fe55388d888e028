"""Approach 2: learning to optimize (paper Sec. 5)."""

from __future__ import annotations
