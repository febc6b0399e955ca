"""Figures and the self-contained HTML report; reads results, never trains."""
