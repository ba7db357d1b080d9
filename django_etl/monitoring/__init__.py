"""Alerts raised by runs: failed tasks and pipelines, data-quality findings (seed section 5)."""
