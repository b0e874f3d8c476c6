"""A TaskFlow ETL pipeline: `@task` functions passing values, multiple_outputs, and a mapped task."""
from __future__ import annotations

import json
from datetime import datetime

from nbflow.sdk import dag, task


@dag(
    schedule="@daily",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "taskflow"],
)
def example_taskflow():
    """Extract orders, total them, and load one result per region."""

    @task()
    def extract() -> dict:
        data = '{"1001": 301.27, "1002": 433.21, "1003": 502.22}'
        return json.loads(data)

    @task(multiple_outputs=True)
    def transform(order_data: dict):
        total = round(sum(order_data.values()), 2)
        return {"total_order_value": total, "order_count": len(order_data)}

    @task()
    def load(total_order_value: float, order_count: int) -> str:
        message = f"{order_count} orders, total order value is {total_order_value:.2f}"
        print(message)
        return message

    @task
    def regions() -> list[str]:
        return ["eu", "us", "apac"]

    @task
    def load_region(region: str, total: float) -> str:
        print(f"loading {region}: {total}")
        return region

    @task
    def report(loaded: list[str]) -> None:
        print(f"loaded regions: {', '.join(loaded)}")

    order_data = extract()
    summary = transform(order_data)
    load(summary["total_order_value"], summary["order_count"])
    loaded = load_region.partial(total=summary["total_order_value"]).expand(region=regions())
    report(loaded)


example_taskflow()
