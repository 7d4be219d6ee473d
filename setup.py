"""Package list for the folder layout of the design card.

Top-level folders map under one import package: runtime/ -> skillbank.runtime, automl/ ->
skillbank.automl; skills/, schemas/ and references/ ship as package data (see pyproject.toml).
setuptools' find cannot express that mapping, so the list is computed here.
"""

from setuptools import find_packages, setup

packages = ["skillbank"] + [f"skillbank.{p}" for p in find_packages("skillbank")]
for top in ("runtime", "automl"):
    packages += [f"skillbank.{top}"] + [f"skillbank.{top}.{p}" for p in find_packages(top)]
packages += ["skillbank.skills", "skillbank.schemas", "skillbank.references"]

setup(packages=packages)
