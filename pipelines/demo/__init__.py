"""The demo: a workspace with seven customers and a year of Poly Lens exports to try polyrecon on.

build.py writes the workspace, customers.yaml says who the customers are and what each one
shows, exports.py and rma_logs.py write their files.
"""
