"""`inception3 demo`: the whole workflow on a drawn-shapes dataset that needs no download."""

from inception3.demo.run import DemoConfig, DemoResult, run_demo

__all__ = ["DemoConfig", "DemoResult", "run_demo"]
