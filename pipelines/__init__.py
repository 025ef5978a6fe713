"""polyrecon: reconcile Poly Lens inventories against Poly+ Enterprise contracts.

Plain Python, no Airflow import: the CLI (`python -m pipelines`) and the DAGs both call it.
"""
